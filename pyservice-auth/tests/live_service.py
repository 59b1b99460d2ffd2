"""A signed-request service for LiveServer tests; AUTH_REDIS_URL and AUTH_REDIS_PREFIX pick its nonce store."""

from __future__ import annotations

import os
from typing import Any

from pyservice import Plugin, Service
from pyservice_auth import Auth

SECRET = "live-secret-0123456789abcdef0123456789abcdef"


class Worker(Plugin):
    """Says which worker process answered, on every answer (refusals included)."""

    name = "worker"

    def setup(self, owner: Any) -> None:
        @owner.plugin("request", name=self.name)
        def worker(context: Any) -> None:
            context.response_headers.append(("X-Worker", str(os.getpid())))
            context.process_request()


store: dict[str, Any] = {"nonce_store": "memory"}
if os.environ.get("AUTH_REDIS_URL"):
    store = {
        "nonce_store": "redis",
        "redis_url": os.environ["AUTH_REDIS_URL"],
        "redis_prefix": os.environ["AUTH_REDIS_PREFIX"],
    }
service = Service(
    available_plugins=[Worker, Auth],
    name="live",
    operations=["ping"],
    plugins={
        "worker": {},
        "auth": {"mode": "signed", "keys": {"live": SECRET}, "allow": ["authenticated"], **store},
    },
)


@service.operation("ping")
def ping(request: Any, response: Any, context: Any) -> None:
    response.caller = context.caller
