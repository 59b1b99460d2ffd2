"""pyservice-auth: authentication, authorization and address whitelisting.

Enable it in the api description (``"plugins": {"auth": {"mode": "signed",
...}}``). The service authenticates each call (API keys, signed requests,
JWT), applies per-operation allow rules (deny by default) and address
lists, and sets ``context.principal`` and ``context.caller``; the client
sends the credential or signs each attempt. The public API lives here; the
modules behind it are private.
"""

from __future__ import annotations

from ._apikeys import API_KEY_SCHEME, GeneratedApiKey, generate_api_key, hash_api_key_secret, split_api_key
from ._exceptions import AuthUnavailable, Forbidden, Unauthenticated
from ._jwt import ALLOWED_ALGORITHMS, MAX_LEEWAY, JwtKey, JwtVerifier
from ._network import AddressRules, parse_address, parse_networks, resolve_client_address
from ._nonces import MemoryNonceStore, NonceStore, NonceStoreUnavailable, RedisNonceStore
from ._plugin import Auth
from ._principal import Principal
from ._rules import AllowRule, parse_allow
from ._signing import (
    SCHEME,
    SIGNED_HEADERS,
    SignatureHeader,
    authorization_header,
    canonical_request,
    parse_signature_header,
    sign,
)
from ._vectors import signature_vectors

__all__ = [
    "ALLOWED_ALGORITHMS",
    "API_KEY_SCHEME",
    "MAX_LEEWAY",
    "SCHEME",
    "SIGNED_HEADERS",
    "AddressRules",
    "AllowRule",
    "Auth",
    "AuthUnavailable",
    "Forbidden",
    "GeneratedApiKey",
    "JwtKey",
    "JwtVerifier",
    "MemoryNonceStore",
    "NonceStore",
    "NonceStoreUnavailable",
    "Principal",
    "RedisNonceStore",
    "SignatureHeader",
    "Unauthenticated",
    "authorization_header",
    "canonical_request",
    "generate_api_key",
    "hash_api_key_secret",
    "parse_address",
    "parse_allow",
    "parse_networks",
    "parse_signature_header",
    "resolve_client_address",
    "sign",
    "signature_vectors",
    "split_api_key",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing the plugin does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-auth")
    raise AttributeError(f"module 'pyservice_auth' has no attribute {name!r}")
