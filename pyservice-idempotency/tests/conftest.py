from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pyservice.testing import free_port

# The services LiveServer starts, and the helpers, live next to this file.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker count inherited from the environment would refuse the memory backend.
    monkeypatch.delenv("PYSERVICE_WORKERS", raising=False)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards (never FLUSHALL)."""
    prefix = f"test-idempotency-{uuid.uuid4().hex}"
    yield prefix
    if "redis_url" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"), socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def psycopg_url(url: str) -> str:
    """The SQLAlchemy URL of a postgresql:// URL, on psycopg 3."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may stop."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary is not None
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            for _ in range(200):
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            probe.close()
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None


@pytest.fixture
def private_redis(redis_url: str) -> Iterator[PrivateRedis]:
    # Asking for redis_url first: where no Redis runs, this skips (or fails in CI) alike.
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed, so the private Redis cannot be started")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def api(plugin: dict[str, Any] | None = None, **operations: Any) -> dict[str, Any]:
    """An orders api with the idempotency plugin; ``operations`` gives each op's plugin entry."""
    ops: dict[str, Any] = {"create_order": {}, "get_order": {"idempotent": True}, "cancel_order": {}}
    for name, entry in operations.items():
        ops[name] = {**ops.get(name, {}), "plugins": {"idempotency": entry}}
    return {
        "name": "orders",
        "version": "v1",
        "operations": ops,
        "exceptions": {"OutOfStock": {"status": 409}, "Busy": {"status": 503}, "Invalid": {"status": 400}},
        "plugins": {"idempotency": plugin or {}},
    }
