"""The ``auth`` plugin: its declared config, and its setup on either side."""

from __future__ import annotations

from typing import ClassVar

import pyservice
from pyservice.checks import callable_or_import

from ._client import setup_client
from ._config import (
    check_allow,
    check_api_key,
    check_api_keys,
    check_env_name,
    check_jwt,
    check_key_id,
    check_max_skew,
    check_mode,
    check_networks,
    check_nonce_store,
    check_positive,
    check_positive_int,
    check_secret,
    check_signing_keys,
    check_token,
)
from ._exceptions import EXCEPTIONS
from ._nonces import NonceStore
from ._service import Authenticator, setup_service

__all__ = ["Auth"]

Option = pyservice.Option
_OPTIONAL_STR = (str, type(None))

_ALLOW = Option(
    list,
    [],
    "Who may call: 'anonymous', 'authenticated', 'principal:<id>', 'role:<name>'; empty denies everyone.",
    check=check_allow,
)
_ALLOW_FROM = Option(list, [], "CIDR networks callers must come from; empty allows any address.", check=check_networks)
_DENY_FROM = Option(list, [], "CIDR networks refused; an operation's list adds to the service's.", check=check_networks)


class Auth(pyservice.Plugin):
    """Authentication, authorization and address whitelisting.

    On the service, one request hook per operation resolves the caller's
    address (believing ``X-Forwarded-For`` only from ``trusted_proxies``),
    checks it against the allow and deny lists, authenticates the call (API
    key, signed request or JWT), checks the operation's ``allow`` rules
    (deny by default), and sets ``context.principal`` and
    ``context.caller``. Refusals are ``Unauthenticated`` (401), ``Forbidden``
    (403) and ``AuthUnavailable`` (503), with messages that never say which
    check failed. On the client, one attempt hook sends the credential, or
    signs every attempt with a fresh timestamp and nonce. See the README
    for every key, the signature's canonical form and the threat model.

    Attributes:
        authenticator: the service side's credential checker, once set up.
    """

    name: ClassVar[str] = "auth"
    exceptions: ClassVar[dict[str, int]] = EXCEPTIONS
    options: ClassVar[dict[str, pyservice.Option]] = {
        "mode": Option((str, list), doc="api_key, signed, jwt, a list of them, or none.", check=check_mode),
        "allow": _ALLOW,
        "allow_from": _ALLOW_FROM,
        "deny_from": _DENY_FROM,
        "trusted_proxies": Option(
            list, [], "CIDR networks of the proxies whose X-Forwarded-For is believed.", check=check_networks
        ),
        "api_keys": Option(
            dict, {}, "API keys by prefix: {hash, principal, roles, expires}.", secret=True, check=check_api_keys
        ),
        "pepper": Option(_OPTIONAL_STR, None, "The API keys' pepper (32 bytes or more).", secret=True),
        "pepper_env": Option(_OPTIONAL_STR, None, "The environment variable holding the pepper.", check=check_env_name),
        "keys": Option(
            dict,
            {},
            "Signing keys by id: a secret, or {secret | secret_env, principal, roles, expires}.",
            secret=True,
            check=check_signing_keys,
        ),
        "max_skew": Option(
            int, 300, "Seconds a signed request's timestamp may differ from the clock.", check=check_max_skew
        ),
        "nonce_store": Option((str, NonceStore), "memory", "memory, redis, or a NonceStore.", check=check_nonce_store),
        "nonce_ttl": Option(
            (float, type(None)), None, "Seconds a nonce is remembered; null: twice max_skew.", check=check_positive
        ),
        "max_nonces": Option(
            int, 1_000_000, "Most nonces the memory store holds; then calls are refused.", check=check_positive_int
        ),
        "redis_url": Option(_OPTIONAL_STR, None, "The Redis server of nonce_store 'redis'.", secret=True),
        "redis_prefix": Option(str, "pyservice:auth:nonce:", "Prefix of the nonce keys in Redis."),
        "redis_timeout": Option(
            float, 0.25, "Seconds allowed to connect to Redis and for each answer.", check=check_positive
        ),
        "jwt": Option(
            (dict, type(None)),
            None,
            "Bearer tokens: {keys: {kid: {algorithm, key | key_env | key_file}}, audience, issuer, leeway, ...}.",
            secret=True,
            check=check_jwt,
        ),
        "clock": Option(
            object,
            None,
            "A callable returning Unix seconds, or 'module:attribute'; for tests.",
            check=callable_or_import,
        ),
        "key_id": Option(_OPTIONAL_STR, None, "Client: the signing key's id.", check=check_key_id),
        "secret": Option(_OPTIONAL_STR, None, "Client: the signing secret.", secret=True, check=check_secret),
        "secret_env": Option(
            _OPTIONAL_STR, None, "Client: the environment variable holding the signing secret.", check=check_env_name
        ),
        "api_key": Option(_OPTIONAL_STR, None, "Client: the API key.", secret=True, check=check_api_key),
        "api_key_env": Option(
            _OPTIONAL_STR, None, "Client: the environment variable holding the API key.", check=check_env_name
        ),
        "token": Option(_OPTIONAL_STR, None, "Client: a bearer token (JWT).", secret=True, check=check_token),
        "token_env": Option(
            _OPTIONAL_STR, None, "Client: the environment variable holding the token.", check=check_env_name
        ),
        "token_provider": Option(
            object,
            None,
            "Client: a callable returning a fresh token for each attempt, or 'module:attribute'.",
            check=callable_or_import,
        ),
    }
    operation_options: ClassVar[dict[str, pyservice.Option]] = {
        "allow": _ALLOW,
        "allow_from": _ALLOW_FROM,
        "deny_from": _DENY_FROM,
    }

    authenticator: Authenticator | None = None

    def setup(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Register the service-side or the client-side hooks on ``owner``.

        Raises:
            ApiError: see the README: keys a mode needs, secrets missing
                from the environment, a per-process nonce store under
                several workers, a client without exactly one credential.
        """
        if isinstance(owner, pyservice.Service):
            setup_service(self, owner)
        else:
            setup_client(self, owner)

    def stop(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Close the Redis connections of the nonce store the plugin built, when the process stops.

        Each worker closes its own (pyservice-core's per-process lifecycle);
        a ``NonceStore`` the application gave is the application's to close.
        """
        authenticator = getattr(self, "authenticator", None)
        store = None if authenticator is None else authenticator.nonce_store
        if owner.side == "service" and store is not None and isinstance(self.config["nonce_store"], str):
            store.close()
