from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from pyservice import Client, Service
from pyservice.testing import client_for, free_port
from pyservice_cache import Cache, cache_of

OPERATIONS = ["get_item", "put_item", "whoami", "nothing", "status_changed"]


def make_api(cache: dict[str, Any] | None = None, **operations: dict[str, Any] | bool) -> dict[str, Any]:
    """An api with the cache plugin; ``operations`` gives each op's cache entry."""
    ops: dict[str, Any] = {name: {} for name in OPERATIONS}
    for name, entry in operations.items():
        ops[name] = {"plugins": {"cache": entry}}
    return {
        "name": "items",
        "version": "v1",
        "operations": ops,
        "exceptions": {"DoesNotExist": {"status": 404}, "Conflict": {"status": 409}},
        "plugins": {"cache": cache or {}},
    }


class Items:
    """A service with counted handlers."""

    def __init__(self, api: dict[str, Any], *, before: Callable[..., Any] | None = None) -> None:
        self.runs: dict[str, int] = dict.fromkeys(OPERATIONS, 0)
        self.items: dict[str, Any] = {}
        self.inner_hook_runs = 0
        self.invalidated: list[int] = []
        service = Service(available_plugins=[Cache], **api)
        self.service = service

        # The plugin registered its hooks first, so this one runs inside it.
        @service.plugin(scope="operation")
        def inner(request: Any, response: Any, context: Any) -> None:
            self.inner_hook_runs += 1
            context.process_request()

        @service.operation("get_item")
        def get_item(request: Any, response: Any, context: Any) -> None:
            self.runs["get_item"] += 1
            if before is not None:
                before(request, context)
            if request.id not in self.items:
                raise service.exceptions.DoesNotExist(f"no item {request.id}", request.id)
            response.item = self.items[request.id]

        @service.operation("put_item")
        def put_item(request: Any, response: Any, context: Any) -> None:
            self.runs["put_item"] += 1
            if request.conflict:
                raise service.exceptions.Conflict("conflict")
            self.items[request.id] = request.item
            self.invalidated.append(context.cache.invalidate("get_item", {"id": request.id}))

        @service.operation("whoami")
        def whoami(request: Any, response: Any, context: Any) -> None:
            self.runs["whoami"] += 1
            response.caller = context.caller or context.remote_addr

        @service.operation("nothing")
        def nothing(request: Any, response: Any, context: Any) -> None:
            self.runs["nothing"] += 1
            if request.null:
                response.value = None

        @service.operation("status_changed")
        def status_changed(request: Any, response: Any, context: Any) -> None:
            self.runs["status_changed"] += 1
            context.status = 202
            response.accepted = True

    @property
    def cache(self) -> Cache:
        return cache_of(self.service)

    def client(self, remote_addr: str = "127.0.0.1") -> Client:
        api = dict(self.service.api.raw)
        api["plugins"] = {}
        api["operations"] = {name: {} for name in OPERATIONS}
        return client_for(self.service, api, remote_addr=remote_addr)


@pytest.fixture
def prefix() -> str:
    return f"test-cache-{uuid.uuid4().hex}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    client.close()


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}*", f"lock:{prefix}*"):
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_cleanup(redis_client: redis.Redis, prefix: str) -> Iterator[None]:
    yield
    _delete_prefix(redis_client, prefix)


class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may stop and restart."""

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
            for _ in range(100):
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            probe.close()
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its port and connections but answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the server answers again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen server handles SIGTERM only once thawed
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    if server.binary is None:
        if os.environ.get("PYSERVICE_REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is not installed (PYSERVICE_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip("redis-server is not installed")
    server.start()
    yield server
    server.stop()
