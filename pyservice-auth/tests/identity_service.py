"""A service accepting signed requests and JWTs, for LiveServer (issue 20's scheme-named rules).

AUTH_REDIS_URL and AUTH_REDIS_PREFIX pick the nonce store; AUTH_ALLOW, a
JSON list, is the ``allow`` list of the ``signer_only`` operation.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pyservice import Service
from pyservice_auth import Auth

SIGNING_SECRET = "identity-signing-secret-0123456789abcdef01"
JWT_SECRET = "identity-jwt-secret-0123456789abcdef0123"
AUDIENCE = "ident"
ISSUER = "https://issuer.test"

service = Service(
    available_plugins=[Auth],
    name="ident",
    operations={
        "signer_only": {"plugins": {"auth": {"allow": json.loads(os.environ.get("AUTH_ALLOW", '["signed:signer"]'))}}},
    },
    plugins={
        "auth": {
            "mode": ["signed", "jwt"],
            "keys": {"signer": SIGNING_SECRET},
            "jwt": {"keys": {"hs": {"algorithm": "HS256", "key": JWT_SECRET}}, "audience": AUDIENCE, "issuer": ISSUER},
            "nonce_store": "redis",
            "redis_url": os.environ.get("AUTH_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "redis_prefix": os.environ.get("AUTH_REDIS_PREFIX", "identity-service:"),
        },
    },
)


@service.operation("signer_only")
def signer_only(request: Any, response: Any, context: Any) -> None:
    response.identity = context.caller_identity.key
