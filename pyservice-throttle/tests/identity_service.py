"""A service with auth (JWT, anonymous calls allowed) and a 5/hour throttle on Redis, for LiveServer.

THROTTLE_REDIS_URL and THROTTLE_PREFIX pick the Redis and the keys; used by
test_identities_live.py.
"""

from __future__ import annotations

import os
from typing import Any

import pyservice

JWT_SECRET = "identity-jwt-secret-0123456789abcdef0123"
AUDIENCE = "ident"
ISSUER = "https://issuer.test"

service = pyservice.Service(
    name="ident",
    operations=["ping"],
    plugins={
        "auth": {
            "mode": "jwt",
            "allow": ["anonymous"],
            "jwt": {"keys": {"hs": {"algorithm": "HS256", "key": JWT_SECRET}}, "audience": AUDIENCE, "issuer": ISSUER},
        },
        "throttle": {
            "limit": "5/hour",
            "backend": "redis",
            "redis_url": os.environ.get("THROTTLE_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "prefix": os.environ.get("THROTTLE_PREFIX", "identity-service:"),
        },
    },
)


@service.operation("ping")
def ping(request: Any, response: Any, context: Any) -> None:
    response.identity = context.caller_identity.key
