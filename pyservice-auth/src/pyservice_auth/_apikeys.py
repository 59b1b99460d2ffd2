"""API keys ``prefix.secret``: their format, their stored hash, making new ones."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = ["API_KEY_SCHEME", "GeneratedApiKey", "generate_api_key", "hash_api_key_secret", "split_api_key"]

#: The ``Authorization`` scheme that carries an API key: ``Authorization: ApiKey <prefix>.<secret>``.
API_KEY_SCHEME = "ApiKey"
PREFIX = r"[A-Za-z0-9_-]{1,64}"
#: ``prefix.secret``, the two parts as groups (:func:`split_api_key`).
API_KEY_FORMAT = re.compile(rf"({PREFIX})\.([A-Za-z0-9_-]{{32,128}})", re.ASCII)
#: Bytes of randomness in a generated secret (256 bits).
_SECRET_BYTES = 32
MIN_PEPPER_LENGTH = 32


@dataclass(frozen=True)
class GeneratedApiKey:
    """A new API key and what the service's config stores for it.

    Attributes:
        key: ``prefix.secret``, to give to the caller once; never stored.
        prefix: the part the service looks the key up by.
        hash: the lowercase hex HMAC-SHA256 of the secret under the pepper;
            the config's ``api_keys.<prefix>.hash``.
    """

    key: str
    prefix: str
    hash: str

    def __repr__(self) -> str:
        # The key is a secret: a repr must be safe to log.
        return f"GeneratedApiKey(prefix={self.prefix!r}, hash={self.hash!r})"


def _pepper_bytes(pepper: str | bytes) -> bytes:
    raw = pepper.encode("utf-8") if isinstance(pepper, str) else pepper
    if len(raw) < MIN_PEPPER_LENGTH:
        raise ValueError(f"the pepper must be at least {MIN_PEPPER_LENGTH} bytes long, got {len(raw)}")
    return raw


def hash_api_key_secret(pepper: str | bytes, secret: str) -> str:
    """The stored form of an API key's secret: HMAC-SHA256(pepper, secret), lowercase hex.

    Args:
        pepper: the server-side pepper, at least 32 bytes.
        secret: the part of the key after the first ``.``.

    Raises:
        ValueError: the pepper is too short.
    """
    return hmac.new(_pepper_bytes(pepper), secret.encode("utf-8"), hashlib.sha256).hexdigest()


def split_api_key(key: str) -> tuple[str, str] | None:
    """Split ``prefix.secret`` into its parts, or return ``None`` when it is not one.

    The prefix is 1 to 64 characters, the secret 32 to 128, both from
    ``A-Z a-z 0-9 _ -``.
    """
    match = API_KEY_FORMAT.fullmatch(key)
    if match is None:
        return None
    prefix, secret = match.groups()
    return prefix, secret


def generate_api_key(pepper: str | bytes, prefix: str | None = None) -> GeneratedApiKey:
    """Make a new API key: a random 256-bit secret, and the hash to store.

    Args:
        pepper: the service's pepper, at least 32 bytes.
        prefix: the key's public prefix; a random one by default. Give a new
            prefix to each key, rotated ones included.

    Raises:
        ValueError: a prefix outside ``[A-Za-z0-9_-]{1,64}``, or a short pepper.
    """
    if prefix is None:
        prefix = "k" + secrets.token_hex(6)
    elif not re.fullmatch(PREFIX, prefix, re.ASCII):
        raise ValueError(f"an API key prefix is 1 to 64 of A-Z a-z 0-9 _ -, got {prefix!r}")
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return GeneratedApiKey(f"{prefix}.{secret}", prefix, hash_api_key_secret(pepper, secret))
