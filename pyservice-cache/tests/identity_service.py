"""A service with auth (JWT and API keys, anonymous calls allowed) and a per-caller cache on Redis.

Served by LiveServer in test_identities_live.py; CACHE_REDIS_URL and
CACHE_PREFIX pick the Redis and the keys. Every answer says which identity
it was computed for, and the worker that computed it.
"""

from __future__ import annotations

import os
from typing import Any

import pyservice

JWT_SECRET = "identity-jwt-secret-0123456789abcdef0123"
AUDIENCE = "ident"
ISSUER = "https://issuer.test"
PEPPER = "identity-pepper-0123456789abcdef01234567"
# Fixed test keys ("<prefix>.<secret>") and their principals; the service keeps only their hashes.
API_KEYS = {
    "addr": ("addr.Q1x0cU9kT2M1V0xPaGlHZk1RUE5tR2JzN0ZkS3pWUmQ", "127.0.0.1"),
    "alice": ("alice.c2VjcmV0LWFsaWNlLTAxMjM0NTY3ODlhYmNkZWYwMTIz", "alice"),
    "bob": ("bob.c2VjcmV0LWJvYi0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Ng", "bob"),
}


def _api_keys() -> dict[str, Any]:
    from pyservice_auth import hash_api_key_secret

    return {
        prefix: {"hash": hash_api_key_secret(PEPPER, key.partition(".")[2]), "principal": principal}
        for prefix, (key, principal) in API_KEYS.items()
    }


api: dict[str, Any] = {
    "name": "ident",
    "operations": {
        "whoami": {"plugins": {"cache": {"scope": "caller", "ttl": 300}}},
        "plain": {},
    },
    "plugins": {
        "auth": {
            "mode": ["jwt", "api_key"],
            "allow": ["anonymous"],
            "jwt": {"keys": {"hs": {"algorithm": "HS256", "key": JWT_SECRET}}, "audience": AUDIENCE, "issuer": ISSUER},
            "api_keys": _api_keys(),
            "pepper": PEPPER,
        },
        "cache": {
            "backend": "redis",
            "redis_url": os.environ.get("CACHE_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "prefix": os.environ.get("CACHE_PREFIX", "identity-service"),
        },
    },
}
service = pyservice.Service(**api)


def _answer(request: Any, response: Any, context: Any) -> None:
    response.identity = context.caller_identity.key
    response.pid = os.getpid()


service.operation("whoami")(_answer)
service.operation("plain")(_answer)
