"""Signed requests with their nonces in Redis, for the fault tests: ``nonce_app:service``.

``REDIS_URL`` names the Redis; ``NONCE_KEY_SECRET`` is the signing secret.
"""

from __future__ import annotations

import os
import uuid

import pyservice

api = {
    "name": "faults-nonce",
    "operations": ["ping"],
    "plugins": {
        "auth": {
            "mode": "signed",
            "keys": {"faults": {"secret_env": "NONCE_KEY_SECRET"}},
            "nonce_store": "redis",
            "redis_url": os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
            "redis_prefix": f"reliability:{uuid.uuid4().hex}:nonce:",
            "allow": ["authenticated"],
        },
    },
}
service = pyservice.Service(**api)


@service.operation()
def ping(request, response, context):
    response.caller = context.caller
