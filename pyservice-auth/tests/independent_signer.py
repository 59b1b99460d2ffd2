"""A second implementation of the signature, written from the README alone.

It imports nothing from pyservice_auth: the tests use it to check that a
request signed by someone else's code is accepted, and it wrote the
known-answer vectors (``python independent_signer.py`` prints them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from typing import Any

ALGORITHM = b"PYSERVICE-HMAC-SHA256"
HEADER_NAMES = (b"content-type", b"idempotency-key", b"pyservice-timeout")


def string_to_sign(
    key_id: str,
    timestamp: int,
    nonce: str,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
) -> bytes:
    lowered = {name.lower().encode("ascii"): value for name, value in headers.items()}
    target = path.encode("utf-8") + (b"?" + query.encode("utf-8") if query else b"")
    parts = [ALGORITHM, key_id.encode("ascii"), b"%d" % timestamp, nonce.encode("ascii"), method.upper().encode()]
    parts.append(target)
    for name in HEADER_NAMES:
        value = lowered.get(name, "").strip(" \t").encode("utf-8")
        parts.append(name + b":" + value)
    parts.append(hashlib.sha256(body).hexdigest().encode("ascii"))
    return b"\n".join(parts)


def signature(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, "sha256").hexdigest()


def authorization(key_id: str, timestamp: int, nonce: str, sig: str) -> str:
    return "PYSERVICE-HMAC-SHA256 key=" + key_id + ", ts=" + str(timestamp) + ", nonce=" + nonce + ", sig=" + sig


def signed_headers(
    secret: str,
    key_id: str,
    timestamp: int,
    nonce: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    method: str = "POST",
    query: str = "",
) -> dict[str, str]:
    message = string_to_sign(key_id, timestamp, nonce, method, path, query, headers, body)
    return {**headers, "Authorization": authorization(key_id, timestamp, nonce, signature(secret, message))}


def vector(name: str, **inputs: Any) -> dict[str, Any]:
    body = inputs["body"].encode("utf-8")
    message = string_to_sign(
        inputs["key_id"],
        inputs["timestamp"],
        inputs["nonce"],
        inputs["method"],
        inputs["path"],
        inputs["query"],
        inputs["headers"],
        body,
    )
    sig = signature(inputs["secret"], message)
    return {
        "name": name,
        **inputs,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "canonical_request": message.decode("utf-8"),
        "signature": sig,
        "authorization": authorization(inputs["key_id"], inputs["timestamp"], inputs["nonce"], sig),
    }


SECRET = "kat-secret-0123456789abcdef0123456789abcdef"
JSON = "application/json"


def all_vectors() -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "secret": SECRET,
        "key_id": "svc-orders",
        "timestamp": 1700000000,
        "nonce": "AAECAwQFBgcICQoLDA0ODxAR",
        "method": "POST",
        "path": "/api/v1/create_order",
        "query": "",
        "headers": {"Content-Type": JSON, "Pyservice-Timeout": "10"},
        "body": '{"item":"book","quantity":2}',
    }
    return [
        vector("a small JSON body", **base),
        vector("an empty object", **{**base, "body": "{}"}),
        vector("an empty body", **{**base, "body": "", "headers": {"Content-Type": JSON}}),
        vector(
            "an idempotency key, and headers to trim",
            **{
                **base,
                "headers": {
                    "content-type": " application/json ",
                    "Idempotency-Key": "order-7f3a",
                    "PYSERVICE-TIMEOUT": "2.5\t",
                },
            },
        ),
        vector("non-ASCII text in the body", **{**base, "body": '{"name":"Zoë","city":"Kraków 東京"}'}),
        vector("a query string", **{**base, "query": "debug=1&x=%20y"}),
        vector(
            "another key, version and operation",
            **{
                **base,
                "secret": "another-secret-that-is-long-enough-000000",
                "key_id": "billing.v2_key-1",
                "timestamp": 1,
                "nonce": "nonce-with_dash-and_underscore",
                "path": "/api/2024-01/charge",
            },
        ),
    ]


if __name__ == "__main__":
    document = {
        "description": (
            "Known-answer vectors of pyservice-auth signed requests (PYSERVICE-HMAC-SHA256). Inputs: secret,"
            " key_id, timestamp, nonce, method, path, query, headers, body (UTF-8 text). Expected: body_sha256,"
            " canonical_request, signature and the Authorization header value. See the package README."
        ),
        "vectors": all_vectors(),
    }
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
