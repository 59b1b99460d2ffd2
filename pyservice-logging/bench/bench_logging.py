"""Cost per call of the logging plugin, service side, through the WSGI app in-process.

python bench/bench_logging.py   (lines go to os.devnull, so the numbers are the plugin's own work)
"""

from __future__ import annotations

import io
import os
import sys
import time

import pyservice

BODY = b'{"id": "7"}'


def build(plugins: dict) -> pyservice.Service:
    """A one-operation service with ``plugins``."""
    service = pyservice.Service(name="bench", operations=["get_item"], plugins=plugins)

    @service.operation("get_item")
    def get_item(request, response, context):
        response.item = {"id": request.id}

    service.compile()
    return service


def per_call_us(service: pyservice.Service, calls: int) -> float:
    """Microseconds per call, averaged over ``calls`` calls."""

    def start_response(status, headers, exc_info=None):
        return None

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/get_item",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
    }
    started = time.perf_counter()
    for _ in range(calls):
        service(dict(environ, **{"wsgi.input": io.BytesIO(BODY)}), start_response)
    return (time.perf_counter() - started) / calls * 1e6


def main(calls: int = 20000) -> None:
    """Print the cost per call of each configuration."""
    cases = {
        "no plugin": {},
        "logging, json": {"logging": {"output": "stdout"}},
        "logging, json, sample_rate 0.01": {"logging": {"output": "stdout", "sample_rate": 0.01}},
        "logging, level error (disabled)": {"logging": {"output": "stdout", "level": "error"}},
    }
    real_stdout = sys.stdout
    with open(os.devnull, "w") as devnull:
        results = {}
        for name, plugins in cases.items():
            sys.stdout = devnull
            try:
                service = build(plugins)
                per_call_us(service, 1000)  # warm up
                results[name] = min(per_call_us(service, calls) for _ in range(3))
            finally:
                sys.stdout = real_stdout
    base = results["no plugin"]
    for name, value in results.items():
        print(f"{name:<36} {value:8.1f} us/call  (+{value - base:6.1f})")


if __name__ == "__main__":
    main()
