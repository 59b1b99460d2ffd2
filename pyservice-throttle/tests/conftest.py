from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# The helpers and the services LiveServer starts live next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from throttle_helpers import FakeClock, PrivateRedis


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker count inherited from the environment would refuse the memory backend.
    monkeypatch.delenv("PYSERVICE_WORKERS", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"test-throttle:{uuid.uuid4().hex}:"
    yield prefix
    if "redis_url" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        try:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def private_redis(redis_url: str) -> Iterator[PrivateRedis]:
    # Asking for redis_url first: where no Redis runs, this skips (or fails in CI) alike.
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed, so the private Redis cannot be started")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)
