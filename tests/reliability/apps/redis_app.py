"""Throttle and cache on one Redis, for the fault tests: ``redis_app:service``.

``REDIS_URL`` names the Redis; ``ON_ERROR`` is the throttle's policy.
"""

from __future__ import annotations

import os
import time
import uuid

import pyservice

api = {
    "name": "faults-redis",
    "operations": {
        "limited": {},
        "cached": {"plugins": {"cache": {"scope": "public", "ttl": 300}}},
    },
    "plugins": {
        "throttle": {
            "backend": "redis",
            "redis_url": os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
            "prefix": f"reliability:{uuid.uuid4().hex}:",
            "limit": "100000/minute",
            "key": "caller",
            "on_error": os.environ.get("ON_ERROR", "open"),
            "retry_interval": 0.2,
        },
        "cache": {
            "backend": "redis",
            "redis_url": os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
            "prefix": f"reliability-{uuid.uuid4().hex}",
            "retry_interval": 0.2,
        },
    },
}
service = pyservice.Service(**api)


@service.operation()
def limited(request, response, context):
    response.ok = True


@service.operation()
def cached(request, response, context):
    response.computed = f"{os.getpid()}-{time.monotonic_ns()}"
