"""The client side: send the credentials, or sign every HTTP attempt afresh."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import pyservice

from ._apikeys import API_KEY_SCHEME
from ._config import check_api_key, check_secret, check_token, read_env
from ._signing import SIGNED_HEADERS, authorization_header, canonical_request, sign

if TYPE_CHECKING:
    from ._plugin import Auth

__all__ = ["credential_identity", "new_nonce", "setup_client"]

_SIGNED = frozenset(SIGNED_HEADERS)
# Separates these digests from any other SHA-256 of the same credential.
_FINGERPRINT_LABEL = b"pyservice-auth client credential\x00"
# Where the identity hook leaves the token it asked the provider for, for the first attempt.
_FIRST_TOKEN = "_pyservice_auth_first_token"  # noqa: S105 - an attribute name, not a secret


def credential_identity(scheme: str, credential: str) -> pyservice.Caller:
    """The ``context.caller_identity`` of a client sending ``credential`` by ``scheme``.

    A SHA-256 of the credential (API key, signing key id and secret, or
    bearer token), labelled, of which 128 bits are kept: the same
    credential gives the same identity in every process, and the identity
    does not reveal it. Every credential this plugin sends is long and
    random (or signed, for a JWT), so the digest cannot be searched back.
    """
    digest = hashlib.sha256(_FINGERPRINT_LABEL + credential.encode("utf-8")).hexdigest()[:32]
    return pyservice.Caller.credential(scheme, digest)


def new_nonce() -> str:
    """A fresh nonce: 144 random bits, 24 base64url characters."""
    return secrets.token_urlsafe(18)


def _set_authorization(headers: MutableMapping[str, str], value: str) -> None:
    # The outgoing headers are a plain dict: drop any other spelling first, so only one is sent.
    for name in [name for name in headers if name.lower() == "authorization"]:
        del headers[name]
    headers["Authorization"] = value


def _from_config_or_env(config: Any, key: str, env_key: str, what: str, check: Callable[[str], Any]) -> str | None:
    value: str | None = config[key]
    env = config[env_key]
    if value is not None and env is not None:
        raise pyservice.ApiError(f"plugins.auth.{key}", f"give {key!r} or {env_key!r}, not both")
    if env is not None:
        try:
            value = read_env(env, what)
            check(value)
        except ValueError as exc:
            raise pyservice.ApiError(f"plugins.auth.{env_key}", str(exc)) from None
    return value


def _signing_hook(client: pyservice.Client, key_id: str, secret: bytes, clock: Callable[[], float]) -> Any:
    api = client.api
    paths = {name: api.endpoint.path_for(api.version, name) for name in api.operations}

    def auth_sign(context: pyservice.ClientContext) -> None:
        # Called for every attempt: a retry is a new request, with its own timestamp and nonce.
        timestamp = int(clock())
        nonce = new_nonce()
        headers = context.headers
        signed = {name.lower(): value for name, value in headers.items() if name.lower() in _SIGNED}
        canonical = canonical_request(
            key_id=key_id,
            timestamp=timestamp,
            nonce=nonce,
            method="POST",
            path=paths[context.operation],
            headers=signed,
            body=context.body or b"",
        )
        _set_authorization(headers, authorization_header(key_id, timestamp, nonce, sign(secret, canonical)))
        context.process_request()

    return auth_sign


def _static_hook(value: str) -> Any:
    def auth_credentials(context: pyservice.ClientContext) -> None:
        _set_authorization(context.headers, value)
        context.process_request()

    return auth_credentials


def _identity_hook(identity: pyservice.Caller) -> Any:
    def auth_identity(request: pyservice.Container, response: pyservice.Container, context: Any) -> None:
        # Before the cache's hook, which keys caller-scoped answers on it:
        # the Authorization header is only added to each HTTP attempt, later.
        context.caller_identity = identity
        context.process_request()

    return auth_identity


def _provided_token(provider: Callable[[], str]) -> str:
    token = provider()
    if not isinstance(token, str) or check_token(token) is None:
        raise TypeError(f"the auth token_provider must return a JWT string, got {type(token).__name__}")
    return token


def _provider_identity_hook(provider: Callable[[], str]) -> Any:
    last: list[Any] = [None, None]  # the last token and its identity: hashed once per token

    def auth_identity(request: pyservice.Container, response: pyservice.Container, context: Any) -> None:
        token = _provided_token(provider)
        seen, identity = last
        if token != seen:
            identity = credential_identity("jwt", token)
            last[:] = [token, identity]
        context.caller_identity = identity
        # The first attempt sends the token the identity was made from; later ones ask afresh.
        context.__dict__[_FIRST_TOKEN] = token
        context.process_request()

    return auth_identity


def _provider_hook(provider: Callable[[], str]) -> Any:
    def auth_token(context: pyservice.ClientContext) -> None:
        token = context.__dict__.pop(_FIRST_TOKEN, None) or _provided_token(provider)
        _set_authorization(context.headers, f"Bearer {token}")
        context.process_request()

    return auth_token


def setup_client(plugin: Auth, client: pyservice.Client) -> None:
    """Register the hooks that name and send this client's one credential.

    An operation hook sets ``context.caller_identity`` to the credential's
    fingerprint (:func:`credential_identity`), for a client-side cache; an
    attempt hook sends the credential, or signs each attempt.

    Raises:
        ApiError: no credential or more than one, one of a scheme ``mode``
            does not name, or one missing from the environment.
    """
    config = plugin.config
    modes: tuple[str, ...] = config["mode"]
    secret = _from_config_or_env(config, "secret", "secret_env", "the signing secret", _checked_secret)
    api_key = _from_config_or_env(config, "api_key", "api_key_env", "the API key", _checked_api_key)
    token = _from_config_or_env(config, "token", "token_env", "the bearer token", _checked_token)
    provider = config["token_provider"]
    given = {
        "signed": config["key_id"] is not None or secret is not None,
        "api_key": api_key is not None,
        "jwt": token is not None or provider is not None,
    }
    schemes = [scheme for scheme, present in given.items() if present]
    if not modes:
        if schemes:
            raise pyservice.ApiError("plugins.auth.mode", f"mode 'none' with {schemes[0]} credentials configured")
        return
    if len(schemes) != 1 or (schemes[0] == "jwt" and token is not None and provider is not None):
        raise pyservice.ApiError(
            "plugins.auth",
            "a client needs exactly one credential: key_id with secret (or secret_env), api_key (or api_key_env),"
            f" token (or token_env) or token_provider; got {len(schemes) or 'none'}",
        )
    scheme = schemes[0]
    if scheme not in modes:
        raise pyservice.ApiError("plugins.auth.mode", f"the client's credential is for {scheme!r}, not in {modes}")
    if scheme == "signed":
        if config["key_id"] is None or secret is None:
            raise pyservice.ApiError("plugins.auth", "signing needs both key_id and secret (or secret_env)")
        clock: Callable[[], float] = config["clock"] or time.time
        hook = _signing_hook(client, config["key_id"], secret.encode("utf-8"), clock)
        identity = _identity_hook(credential_identity("signed", f"{config['key_id']}\x00{secret}"))
    elif scheme == "api_key":
        assert api_key is not None
        hook = _static_hook(f"{API_KEY_SCHEME} {api_key}")
        identity = _identity_hook(credential_identity("api_key", api_key))
    elif token is not None:
        hook = _static_hook(f"Bearer {token}")
        identity = _identity_hook(credential_identity("jwt", token))
    else:
        hook = _provider_hook(provider)
        identity = _provider_identity_hook(provider)
    client.plugin("operation", name=plugin.name)(identity)
    client.plugin("attempt", name=plugin.name)(hook)


def _checked_secret(value: str) -> None:
    if check_secret(value) is None:
        raise ValueError("no secret")


def _checked_api_key(value: str) -> None:
    check_api_key(value)


def _checked_token(value: str) -> None:
    check_token(value)
