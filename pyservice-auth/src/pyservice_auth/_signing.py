"""Signed requests: the canonical form, the signature and the Authorization header.

The README's "Signed requests" section is the specification; this module
is its reference implementation, used by both sides. The known-answer
vectors shipped next to it (``signature_vectors.json``) pin it down.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "SCHEME",
    "SIGNED_HEADERS",
    "SignatureHeader",
    "authorization_header",
    "canonical_request",
    "parse_signature_header",
    "sign",
]

#: The algorithm's name: the first line of the canonical form and the scheme of the header.
SCHEME = "PYSERVICE-HMAC-SHA256"
#: The headers the signature covers, in this order; an absent header signs as empty.
SIGNED_HEADERS = ("content-type", "idempotency-key", "pyservice-timeout")

KEY_ID = r"[A-Za-z0-9._-]{1,64}"
NONCE = r"[A-Za-z0-9_-]{16,64}"
_HEADER = re.compile(
    # No leading zeros: one timestamp has one spelling, so the header cannot be altered without the MAC noticing.
    rf"{SCHEME} key=({KEY_ID}), ts=(0|[1-9][0-9]{{0,11}}), nonce=({NONCE}), sig=([0-9a-f]{{64}})",
    re.ASCII,
)
_BLANKS = " \t"
# Any control character would let one component's text pass for a line of the next one.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class SignatureHeader:
    """The parts of a signed request's ``Authorization`` header.

    Attributes:
        key_id: the id of the signing key.
        timestamp: Unix time in whole seconds, when the client signed.
        nonce: the client's one-time value.
        signature: the lowercase hex HMAC-SHA256 it sent.
    """

    key_id: str
    timestamp: int
    nonce: str
    signature: str


def parse_signature_header(value: str) -> SignatureHeader | None:
    """Parse ``PYSERVICE-HMAC-SHA256 key=..., ts=..., nonce=..., sig=...``.

    The grammar is strict (README, "Signed requests"): the parameters in
    this order, once each, separated by a comma and one space.

    Returns:
        The parts, or ``None`` when ``value`` does not follow the grammar.
    """
    match = _HEADER.fullmatch(value)
    if match is None:
        return None
    key_id, timestamp, nonce, signature = match.groups()
    return SignatureHeader(key_id, int(timestamp), nonce, signature)


def _component(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"the {name} of a signed request may not contain control characters, got {value[:80]!r}")
    return value


def canonical_request(
    *,
    key_id: str,
    timestamp: int,
    nonce: str,
    method: str,
    path: str,
    query: str = "",
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The text a signature is computed over.

    Args:
        key_id: the signing key's id.
        timestamp: Unix time in whole seconds.
        nonce: the one-time value.
        method: the HTTP method; upper-cased.
        path: the URL path, percent-decoded.
        query: the raw query string without ``?``; empty for none.
        headers: the request's headers, by lowercase name; only
            :data:`SIGNED_HEADERS` are read, and an absent one signs as empty.
        body: the exact request body.

    Returns:
        Ten lines joined by ``\\n``, without a final newline.

    Raises:
        ValueError: a component holds a control character (other than tab).
    """
    target = path if not query else f"{path}?{query}"
    lines = [
        SCHEME,
        key_id,
        str(timestamp),
        nonce,
        method.upper(),
        _component("path", target),
    ]
    for name in SIGNED_HEADERS:
        value = headers.get(name, "").strip(_BLANKS)
        lines.append(f"{name}:{_component(name, value)}")
    lines.append(hashlib.sha256(body).hexdigest())
    return "\n".join(lines)


def sign(secret: bytes, canonical: str) -> str:
    """The lowercase hex HMAC-SHA256 of ``canonical`` (UTF-8) under ``secret``."""
    return hmac.new(secret, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_header(key_id: str, timestamp: int, nonce: str, signature: str) -> str:
    """The ``Authorization`` header value of a signed request."""
    return f"{SCHEME} key={key_id}, ts={timestamp}, nonce={nonce}, sig={signature}"
