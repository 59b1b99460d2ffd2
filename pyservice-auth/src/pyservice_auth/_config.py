"""Checks of the plugin's config keys: each fails at start-up, naming what it expected."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._apikeys import PREFIX, split_api_key
from ._jwt import ALLOWED_ALGORITHMS, MAX_LEEWAY
from ._network import parse_networks
from ._nonces import NonceStore
from ._rules import parse_allow
from ._signing import KEY_ID

__all__ = [
    "MODES",
    "ApiKeySpec",
    "JwtKeySpec",
    "JwtSpec",
    "SigningKeySpec",
    "check_allow",
    "check_api_key",
    "check_api_keys",
    "check_env_name",
    "check_jwt",
    "check_key_id",
    "check_max_skew",
    "check_mode",
    "check_networks",
    "check_nonce_store",
    "check_positive",
    "check_positive_int",
    "check_secret",
    "check_signing_keys",
    "check_token",
    "read_env",
]

#: The credential schemes, as ``mode`` names them.
MODES = ("api_key", "signed", "jwt")
MIN_SECRET_BYTES = 32
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_HASH = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
# Ids and role names reach logs and other plugins' keys: printable, bounded.
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


def _name(what: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"expected {what} as 1 to 256 printable characters, got {value!r}")
    return value


def _roles(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        raise ValueError(f"expected 'roles' as a list of names, got {value!r}")
    return frozenset(_name("a role", role) for role in value)


def _only(where: str, given: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(key for key in given if key not in accepted)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (accepted: {', '.join(accepted)})")


def check_mode(value: str | list[Any]) -> tuple[str, ...]:
    """``"api_key"``, ``"signed"``, ``"jwt"``, a list of them, or ``"none"``."""
    if value == "none":
        return ()
    modes = [value] if isinstance(value, str) else value
    if not modes or any(mode not in MODES for mode in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"expected 'none', or one or more distinct modes among {', '.join(MODES)}")
    return tuple(modes)


def check_allow(value: list[Any]) -> list[Any]:
    """An ``allow`` list: validated here, compiled per operation in setup."""
    parse_allow(value)
    return value


def check_networks(value: list[Any]) -> list[Any]:
    """A list of CIDR networks, IPv4 or IPv6."""
    parse_networks(value)
    return value


def check_max_skew(value: int) -> int:
    """Seconds from 1 to 3600."""
    if not 1 <= value <= 3600:
        raise ValueError("expected seconds from 1 to 3600")
    return value


def check_positive(value: float) -> float:
    """A number greater than 0."""
    if value <= 0:
        raise ValueError("expected a number greater than 0")
    return value


def check_positive_int(value: int) -> int:
    """An integer greater than 0."""
    if value <= 0:
        raise ValueError("expected an integer greater than 0")
    return value


def check_env_name(value: str | None) -> str | None:
    """The name of an environment variable."""
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise ValueError("expected an environment variable name")
    return value


def check_secret(value: str | None) -> str | None:
    """A secret of at least 32 bytes."""
    if value is not None and len(value.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"expected a secret of at least {MIN_SECRET_BYTES} bytes")
    return value


def check_key_id(value: str | None) -> str | None:
    """A signing key id: 1 to 64 of ``A-Z a-z 0-9 . _ -``."""
    if value is not None and not re.fullmatch(KEY_ID, value, re.ASCII):
        raise ValueError("expected a key id of 1 to 64 of A-Z a-z 0-9 . _ -")
    return value


def check_api_key(value: str | None) -> str | None:
    """An API key ``prefix.secret``."""
    if value is not None and split_api_key(value) is None:
        # Never echo the value: it is a secret (Option masks it too).
        raise ValueError("expected an API key 'prefix.secret' (prefix 1-64, secret 32-128 of A-Z a-z 0-9 _ -)")
    return value


def check_token(value: str | None) -> str | None:
    """A JWT, three base64url parts."""
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", value):
        raise ValueError("expected a JWT (three base64url parts separated by '.')")
    return value


def _expires(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.timestamp()
    raise ValueError(f"expected 'expires' as Unix seconds or an ISO 8601 time with a UTC offset, got {value!r}")


@dataclass(frozen=True)
class SigningKeySpec:
    """A signing key as configured; the secret is resolved at start-up on the service.

    Attributes:
        secret: the shared secret, when written in the config.
        secret_env: the environment variable holding it, otherwise.
        principal: the principal a request signed with it authenticates.
        roles: that principal's roles.
        expires: Unix time after which the key is refused, or ``None``.
    """

    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    principal: str = ""
    roles: frozenset[str] = frozenset()
    expires: float | None = None


def check_signing_keys(value: Mapping[str, Any]) -> dict[str, SigningKeySpec]:
    """``{key id: secret}`` or ``{key id: {secret | secret_env, principal, roles, expires}}``."""
    result = {}
    for key_id, entry in value.items():
        if not isinstance(key_id, str) or not re.fullmatch(KEY_ID, key_id, re.ASCII):
            raise ValueError(f"expected key ids of 1 to 64 of A-Z a-z 0-9 . _ -, got {key_id!r}")
        if isinstance(entry, str):
            entry = {"secret": entry}
        if not isinstance(entry, Mapping):
            raise ValueError(f"keys.{key_id}: expected a secret or a mapping, got {type(entry).__name__}")
        _only(f"keys.{key_id}", entry, ("secret", "secret_env", "principal", "roles", "expires"))
        secret, secret_env = entry.get("secret"), entry.get("secret_env")
        if (secret is None) == (secret_env is None):
            raise ValueError(f"keys.{key_id}: expected exactly one of 'secret' and 'secret_env'")
        if secret is not None and (not isinstance(secret, str) or check_secret(secret) is None):
            raise ValueError(f"keys.{key_id}: expected a secret of at least {MIN_SECRET_BYTES} bytes")
        if secret_env is not None and (not isinstance(secret_env, str) or not _ENV_NAME.fullmatch(secret_env)):
            raise ValueError(f"keys.{key_id}: expected 'secret_env' as an environment variable name")
        result[key_id] = SigningKeySpec(
            secret=secret,
            secret_env=secret_env,
            principal=_name("a principal id", entry.get("principal", key_id)),
            roles=_roles(entry.get("roles", [])),
            expires=_expires(entry.get("expires")),
        )
    return result


@dataclass(frozen=True)
class ApiKeySpec:
    """An API key as stored: its hash, never the key.

    Attributes:
        hash: lowercase hex HMAC-SHA256(pepper, secret).
        principal: the principal the key authenticates.
        roles: that principal's roles.
        expires: Unix time after which the key is refused, or ``None``.
    """

    hash: str
    principal: str
    roles: frozenset[str] = frozenset()
    expires: float | None = None


def check_api_keys(value: Mapping[str, Any]) -> dict[str, ApiKeySpec]:
    """``{prefix: {hash, principal, roles, expires}}``."""
    result = {}
    for prefix, entry in value.items():
        if not isinstance(prefix, str) or not re.fullmatch(PREFIX, prefix, re.ASCII):
            raise ValueError(f"expected API key prefixes of 1 to 64 of A-Z a-z 0-9 _ -, got {prefix!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"api_keys.{prefix}: expected a mapping with 'hash' and 'principal'")
        _only(f"api_keys.{prefix}", entry, ("hash", "principal", "roles", "expires"))
        digest = entry.get("hash")
        if not isinstance(digest, str) or not _HASH.fullmatch(digest):
            raise ValueError(
                f"api_keys.{prefix}: expected 'hash' as 64 hex digits (HMAC-SHA256 of the secret under the pepper)"
            )
        if "principal" not in entry:
            raise ValueError(f"api_keys.{prefix}: 'principal' is required")
        result[prefix] = ApiKeySpec(
            hash=digest.lower(),
            principal=_name("a principal id", entry["principal"]),
            roles=_roles(entry.get("roles", [])),
            expires=_expires(entry.get("expires")),
        )
    return result


@dataclass(frozen=True)
class JwtKeySpec:
    """A JWT verification key as configured; loaded at start-up on the service.

    Attributes:
        algorithm: the algorithm the key is pinned to.
        key: the key (PEM, or the HMAC secret), when written in the config.
        key_env: the environment variable holding it.
        key_file: the file holding it.
    """

    algorithm: str
    key: str | None = field(default=None, repr=False)
    key_env: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class JwtSpec:
    """The ``jwt`` key, checked.

    Attributes:
        keys: verification keys by ``kid``.
        audience: the accepted audience(s).
        issuer: the accepted issuer.
        leeway: seconds of clock leeway.
        principal_claim: the claim holding the principal's id.
        roles_claim: the claim holding the principal's roles.
    """

    keys: Mapping[str, JwtKeySpec]
    audience: str | tuple[str, ...]
    issuer: str
    leeway: float = 0
    principal_claim: str = "sub"
    roles_claim: str = "roles"


def check_jwt(value: Mapping[str, Any] | None) -> JwtSpec | None:
    """``{keys: {kid: {algorithm, key | key_env | key_file}}, audience, issuer, leeway, ...}``."""
    if value is None:
        return None
    _only("jwt", value, ("keys", "audience", "issuer", "leeway", "principal_claim", "roles_claim"))
    keys = value.get("keys")
    if not isinstance(keys, Mapping) or not keys:
        raise ValueError("jwt.keys: expected a mapping of kid to {algorithm, key | key_env | key_file}")
    specs = {}
    for kid, entry in keys.items():
        where = f"jwt.keys.{kid}"
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise ValueError(f"jwt.keys: expected kid strings of 1 to 256 characters, got {kid!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a mapping with 'algorithm' and a key")
        _only(where, entry, ("algorithm", "key", "key_env", "key_file"))
        algorithm = entry.get("algorithm")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise ValueError(f"{where}.algorithm: expected one of {', '.join(sorted(ALLOWED_ALGORITHMS))}")
        sources = [name for name in ("key", "key_env", "key_file") if entry.get(name) is not None]
        if len(sources) != 1 or not all(isinstance(entry[name], str) for name in sources):
            raise ValueError(f"{where}: expected exactly one of 'key', 'key_env' and 'key_file', as a string")
        specs[kid] = JwtKeySpec(algorithm, entry.get("key"), entry.get("key_env"), entry.get("key_file"))
    audience = value.get("audience")
    if isinstance(audience, list) and audience and all(isinstance(item, str) and item for item in audience):
        audience = tuple(audience)
    elif not isinstance(audience, str) or not audience:
        raise ValueError("jwt.audience: required, a non-empty string or list of strings")
    issuer = value.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise ValueError("jwt.issuer: required, a non-empty string")
    leeway = value.get("leeway", 0)
    if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or not 0 <= leeway <= MAX_LEEWAY:
        raise ValueError(f"jwt.leeway: expected seconds from 0 to {MAX_LEEWAY}")
    principal_claim = value.get("principal_claim", "sub")
    roles_claim = value.get("roles_claim", "roles")
    if not isinstance(principal_claim, str) or not isinstance(roles_claim, str):
        raise ValueError("jwt.principal_claim and jwt.roles_claim: expected claim names")
    return JwtSpec(specs, audience, issuer, float(leeway), principal_claim, roles_claim)


def check_nonce_store(value: str | NonceStore) -> str | NonceStore:
    """``"memory"``, ``"redis"`` or a :class:`NonceStore`."""
    if isinstance(value, NonceStore) or value in ("memory", "redis"):
        return value
    raise ValueError("expected 'memory', 'redis' or a NonceStore")


def read_env(name: str, what: str) -> str:
    """The value of environment variable ``name``, non-empty.

    Raises:
        ValueError: it is unset or empty (the message names the variable, never a value).
    """
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"the environment variable {name!r} holding {what} is unset or empty")
    return value
