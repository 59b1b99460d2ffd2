"""A cache and a throttle on one Redis, for the frozen-backend tests: ``frozen_redis_app:service``.

``REDIS_URL`` names the Redis. ``cached`` is cached and not throttled;
``limited_closed`` and ``limited_open`` are throttled with each ``on_error``.
"""

from __future__ import annotations

import os
import time
import uuid

import pyservice

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")

api = {
    "name": "frozen-redis",
    "operations": {
        "cached": {"plugins": {"cache": {"scope": "public", "ttl": 300}}},
        "limited_closed": {"plugins": {"throttle": {"limit": "100000/minute", "on_error": "closed"}}},
        "limited_open": {"plugins": {"throttle": {"limit": "100000/minute", "on_error": "open"}}},
    },
    "plugins": {
        "throttle": {
            "backend": "redis",
            "redis_url": REDIS_URL,
            "prefix": f"reliability:{uuid.uuid4().hex}:",
            "key": "caller",
            "retry_interval": 0.2,
        },
        "cache": {
            "backend": "redis",
            "redis_url": REDIS_URL,
            "prefix": f"reliability-{uuid.uuid4().hex}",
            "retry_interval": 0.2,
        },
    },
}
service = pyservice.Service(**api)


@service.operation()
def cached(request, response, context):
    response.computed = f"{os.getpid()}-{time.monotonic_ns()}"


@service.operation()
def limited_closed(request, response, context):
    response.ok = True


@service.operation()
def limited_open(request, response, context):
    response.ok = True
