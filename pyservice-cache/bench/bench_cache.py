"""The cost of a cache hit and a cache miss, through the real WSGI application.

python bench/bench_cache.py [REDIS_URL]

Each call goes through Service.wsgi_application with a prepared environ (no
socket, no client), so the numbers are the service's own cost per call. The
handler sleeps 1 ms, a stand-in for the database query a hit saves.
"""

from __future__ import annotations

import io
import sys
import time
import uuid
from typing import Any

import orjson
from pyservice import Service
from pyservice_cache import Cache, cache_of

CALLS = 2000
HANDLER_SECONDS = 0.001


def build(cache: dict[str, Any] | None) -> Service:
    """A service whose get_item sleeps 1 ms, cached with ``cache`` (None: no plugin)."""
    plugins = {"cache": cache} if cache is not None else {}
    operation = {"plugins": {"cache": {"scope": "public"}}} if cache is not None else {}
    service = Service(available_plugins=[Cache], operations={"get_item": operation}, plugins=plugins)

    @service.operation("get_item")
    def get_item(request: Any, response: Any, context: Any) -> None:
        time.sleep(HANDLER_SECONDS)
        response.item = {"id": request.id, "name": "teapot", "tags": ["a", "b"]}

    service.compile()
    return service


def call(service: Service, body: bytes) -> None:
    """One call through the WSGI application."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/get_item",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
    }
    service.wsgi_application(environ, lambda status, headers, exc_info=None: None)


def per_call(service: Service, bodies: list[bytes]) -> float:
    """Microseconds per call, over ``bodies``."""
    started = time.perf_counter()
    for body in bodies:
        call(service, body)
    return (time.perf_counter() - started) / len(bodies) * 1e6


def measure(label: str, cache: dict[str, Any] | None) -> None:
    """Print the miss and hit cost of one configuration."""
    service = build(cache)
    misses = [orjson.dumps({"id": index}) for index in range(CALLS)]
    miss = per_call(service, misses)
    hit = per_call(service, [orjson.dumps({"id": 7})] * CALLS)
    if cache is None:
        print(f"{label:<22} {miss:9.1f} us per call (every call runs the handler)")
    else:
        print(f"{label:<22} miss {miss:9.1f} us   hit {hit:7.1f} us   stats {cache_of(service).stats.snapshot()}")
        cache_of(service).invalidate_all()
        cache_of(service).close()


def main() -> None:
    """Measure without a cache, with memory, and with Redis when a URL is given."""
    print(f"handler: {HANDLER_SECONDS * 1e6:.0f} us; {CALLS} calls each")
    measure("no cache", None)
    measure("memory backend", {"backend": "memory"})
    if len(sys.argv) > 1:
        measure("redis backend", {"backend": "redis", "redis_url": sys.argv[1], "prefix": f"bench-{uuid.uuid4().hex}"})


if __name__ == "__main__":
    main()
