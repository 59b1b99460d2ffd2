"""A cached service for the multi-process stampede test; counts handler runs in Redis.

Configured by the environment: CACHE_REDIS_URL, CACHE_PREFIX, CACHE_COUNTER.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from pyservice import Service
from pyservice_cache import Cache

api = {
    "name": "stampede",
    "operations": {"get_item": {"idempotent": True, "plugins": {"cache": {"scope": "public", "ttl": 60}}}},
    "plugins": {
        "cache": {"backend": "redis", "redis_url": os.environ["CACHE_REDIS_URL"], "prefix": os.environ["CACHE_PREFIX"]}
    },
}
service = Service(available_plugins=[Cache], **api)
counter = redis.Redis.from_url(os.environ["CACHE_REDIS_URL"], socket_timeout=5)


@service.operation("get_item")
def get_item(request: Any, response: Any, context: Any) -> None:
    counter.incr(os.environ["CACHE_COUNTER"])
    time.sleep(0.5)  # long enough for every other call to arrive while this one runs
    response.item = {"id": request.id, "pid": os.getpid()}
