"""The service side: resolve the caller's address, authenticate, authorize; once per call."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

import pyservice

from ._apikeys import API_KEY_FORMAT, MIN_PEPPER_LENGTH
from ._config import ApiKeySpec, JwtSpec, read_env
from ._exceptions import (
    FORBIDDEN_MESSAGE,
    UNAUTHENTICATED_MESSAGE,
    UNAVAILABLE_MESSAGE,
    AuthUnavailable,
    Forbidden,
    Unauthenticated,
)
from ._jwt import JwtKey, JwtVerifier
from ._network import AddressRules, Network, UnresolvableAddress, parse_networks, resolve_client_address
from ._nonces import MemoryNonceStore, NonceStore, NonceStoreUnavailable, RedisNonceStore
from ._principal import Principal
from ._rules import AllowRule, parse_allow
from ._signing import SCHEME, canonical_request, parse_signature_header, sign

if TYPE_CHECKING:
    from ._plugin import Auth

__all__ = ["Authenticator", "setup_service"]

logger = logging.getLogger("pyservice_auth")

_CHALLENGES = {"signed": SCHEME, "api_key": "ApiKey", "jwt": "Bearer"}


class _Refused(Exception):
    """Why a call is refused; the reason is logged, the caller sees only the exception's fixed message."""

    def __init__(self, exception: type[BaseException], message: str, reason: str) -> None:
        super().__init__(reason)
        self.exception = exception
        self.message = message
        self.reason = reason


def _unauthenticated(reason: str) -> NoReturn:
    raise _Refused(Unauthenticated, UNAUTHENTICATED_MESSAGE, reason)


class _SigningKey:
    __slots__ = ("expires", "principal", "secret")

    def __init__(self, secret: bytes, principal: Principal, expires: float | None) -> None:
        self.secret = secret
        self.principal = principal
        self.expires = expires


#: The claims of a principal authenticated by an API key: none, and shared, so read-only.
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class _StoredApiKey:
    __slots__ = ("digest", "expires", "principal")

    def __init__(self, digest: bytes, expires: float | None, principal: Principal) -> None:
        self.digest = digest
        self.expires = expires
        self.principal = principal


class Authenticator:
    """Checks the credentials of one call: the part of the plugin shared by every operation.

    Built once at start-up from the plugin's checked config, with secrets
    resolved from the environment. Each scheme answers a principal, or
    refuses; a call without an ``Authorization`` header is anonymous.

    Args:
        modes: the accepted schemes.
        signing_keys: signing keys by id: secret, principal, expiry.
        api_keys: stored API keys by prefix.
        pepper: the API keys' pepper.
        jwt: the bearer-token verifier.
        nonce_store: where signed requests' nonces are recorded.
        max_skew: seconds a signed request's timestamp may be off.
        nonce_ttl: seconds a nonce is remembered; at least twice ``max_skew``.
        clock: Unix seconds.
    """

    def __init__(
        self,
        modes: tuple[str, ...],
        *,
        signing_keys: Mapping[str, _SigningKey],
        api_keys: Mapping[str, ApiKeySpec],
        pepper: bytes | None,
        jwt: JwtVerifier | None,
        nonce_store: NonceStore | None,
        max_skew: int,
        nonce_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self.modes = modes
        self.signing_keys = dict(signing_keys)
        self.api_keys = dict(api_keys)
        self.pepper = pepper
        self.jwt = jwt
        self.nonce_store = nonce_store
        self.max_skew = max_skew
        self.nonce_ttl = nonce_ttl
        self.clock = clock
        self.challenge = ", ".join(_CHALLENGES[mode] for mode in modes)
        self._signed_on = "signed" in modes
        self._api_key_on = "api_key" in modes and pepper is not None
        # Unknown key ids and prefixes are checked against these, so that they
        # cost what a known one does: timing tells nothing about which exist.
        self._decoy_secret = secrets.token_bytes(32)
        self._decoy_key = _StoredApiKey(secrets.token_bytes(32), None, Principal(""))
        # What an API key check needs, made once: the pepper's keyed HMAC state,
        # copied per call (the same HMAC, without deriving the key's pads again),
        # and each key's digest as bytes and its principal, immutable and shared.
        self._keyed_pepper = hmac.new(pepper, None, hashlib.sha256) if pepper is not None else None
        self._stored_api_keys = {
            prefix: _StoredApiKey(
                bytes.fromhex(spec.hash),
                spec.expires,
                Principal(spec.principal, spec.roles, "api_key", prefix, claims=_NO_CLAIMS),
            )
            for prefix, spec in self.api_keys.items()
        }
        # Each key's caller identity (a cached property), made here rather than on its first call.
        principals = [stored.principal for stored in self._stored_api_keys.values()]
        principals += [key.principal for key in self.signing_keys.values()]
        for principal in principals:
            principal.caller  # noqa: B018 - read for the cached property's side effect

    def authenticate(self, context: pyservice.ServiceContext) -> Principal | None:
        """The call's principal, or ``None`` when it sent no ``Authorization`` header.

        Raises:
            _Refused: the credentials are refused, or the nonce store is down.
        """
        # context.headers.get("Authorization"), read in place: WSGI puts it here.
        header = context.environ.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "apikey" and self._api_key_on:
            return self._api_key(credentials)
        if scheme == "pyservice-hmac-sha256" and self._signed_on:
            return self._signed(context, header)
        if scheme == "bearer" and self.jwt is not None:
            principal, reason = self.jwt.verify(credentials)
            if principal is None:
                _unauthenticated(reason)
            return principal
        _unauthenticated("an Authorization scheme this service does not accept")

    def _signed(self, context: pyservice.ServiceContext, header: str) -> Principal:
        # The order is the specification's: parse, clock skew, key lookup, MAC, then the nonce.
        parsed = parse_signature_header(header)
        if parsed is None:
            _unauthenticated("a malformed signature header")
        now = self.clock()
        if abs(now - parsed.timestamp) > self.max_skew:
            _unauthenticated(f"a signed timestamp {parsed.timestamp - now:+.0f}s off, outside ±{self.max_skew}s")
        key = self.signing_keys.get(parsed.key_id)
        if key is not None and key.expires is not None and now >= key.expires:
            key = None
        environ = context.environ
        try:
            path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8")
            canonical = canonical_request(
                key_id=parsed.key_id,
                timestamp=parsed.timestamp,
                nonce=parsed.nonce,
                method=environ["REQUEST_METHOD"],
                path=path,
                query=environ.get("QUERY_STRING", ""),
                headers=context.headers,
                body=context.body,
            )
        except (UnicodeError, ValueError):
            _unauthenticated("a path or signed header that cannot be put in canonical form")
        expected = sign(key.secret if key is not None else self._decoy_secret, canonical)
        matches = hmac.compare_digest(expected, parsed.signature)
        if key is None:
            _unauthenticated(f"an unknown or expired signing key id {parsed.key_id!r}")
        if not matches:
            _unauthenticated(f"a signature that does not match (key id {parsed.key_id!r})")
        store = self.nonce_store
        if store is None or (not store.shared and environ.get("wsgi.multiprocess")):
            # A store each worker keeps alone would let a replay through another worker.
            raise _Refused(AuthUnavailable, UNAVAILABLE_MESSAGE, "a per-process nonce store under several processes")
        try:
            nonce = f"{parsed.key_id}:{parsed.nonce}"
            if context.deadline is None:
                new = store.add(nonce, self.nonce_ttl)
            else:
                # The store waits no longer than the call has left (and its own timeout).
                new = store.add_within(nonce, self.nonce_ttl, context.time_left() or 0.0)
        except NonceStoreUnavailable as exc:
            raise _Refused(AuthUnavailable, UNAVAILABLE_MESSAGE, f"the nonce store failed: {exc}") from None
        if not new:
            _unauthenticated(f"a replayed nonce (key id {parsed.key_id!r})")
        return key.principal

    def _api_key(self, credentials: str) -> Principal:
        # split_api_key(), hash_api_key_secret() and the comparison, with what
        # does not change made at start-up (_api_key_on says a pepper exists).
        match = API_KEY_FORMAT.fullmatch(credentials)
        if match is None:
            _unauthenticated("a malformed API key")
        prefix, secret = match.groups()
        stored = self._stored_api_keys.get(prefix)
        mac = self._keyed_pepper.copy()  # type: ignore[union-attr]
        mac.update(secret.encode())
        matches = hmac.compare_digest(mac.digest(), (stored or self._decoy_key).digest)
        if stored is None:
            _unauthenticated(f"an unknown API key prefix {prefix!r}")
        if not matches:
            _unauthenticated(f"a wrong secret for API key prefix {prefix!r}")
        if stored.expires is not None and self.clock() >= stored.expires:
            _unauthenticated(f"an expired API key (prefix {prefix!r})")
        return stored.principal


def _operation_hook(
    operation: str,
    authenticator: Authenticator,
    allow: AllowRule,
    addresses: AddressRules,
    trusted_proxies: tuple[Network, ...],
) -> Callable[[pyservice.ServiceContext], None]:
    resolve = bool(addresses) or bool(trusted_proxies)
    anonymous = pyservice.Caller.anonymous

    def auth(context: pyservice.ServiceContext) -> None:
        address: Any = context.remote_addr
        try:
            if resolve:
                try:
                    resolved = resolve_client_address(address, context.headers.get("X-Forwarded-For"), trusted_proxies)
                except UnresolvableAddress as exc:
                    raise _Refused(Forbidden, FORBIDDEN_MESSAGE, str(exc)) from None
                address = None if resolved is None else str(resolved)
                if not addresses.permits(resolved):
                    raise _Refused(Forbidden, FORBIDDEN_MESSAGE, "an address outside the allowed networks")
            context.caller = address
            principal = authenticator.authenticate(context)
            if not allow.permits(principal):
                if principal is None:
                    _unauthenticated("no credentials, and the operation does not allow anonymous calls")
                raise _Refused(Forbidden, FORBIDDEN_MESSAGE, f"principal {principal.id!r} is not allowed")
        except _Refused as refusal:
            logger.info("refused %s from %s: %s", operation, address, refusal.reason)
            if refusal.exception is Unauthenticated and authenticator.challenge:
                context.response_headers.append(("WWW-Authenticate", authenticator.challenge))
            raise refusal.exception(refusal.message) from None
        if principal is not None:
            context.principal = principal
            context.caller = principal.id
            # Made once per principal: an API or signing key's is made at start-up.
            context.caller_identity = principal.caller
        else:
            # The same object for every anonymous call from one address: nothing allocated.
            context.caller_identity = anonymous(address)
        context.process_request()

    auth.__qualname__ = f"auth {operation}"
    return auth


def _resolve_signing_keys(plugin: Auth) -> dict[str, _SigningKey]:
    keys = {}
    for key_id, spec in plugin.config["keys"].items():
        where = f"plugins.auth.keys.{key_id}"
        if spec.secret_env is not None:
            try:
                secret = read_env(spec.secret_env, "the signing secret")
            except ValueError as exc:
                raise pyservice.ApiError(where, str(exc)) from None
            if len(secret.encode("utf-8")) < 32:
                raise pyservice.ApiError(where, f"the secret in {spec.secret_env!r} is shorter than 32 bytes")
        else:
            secret = spec.secret
        principal = Principal(spec.principal, spec.roles, "signed", key_id)
        keys[key_id] = _SigningKey(secret.encode("utf-8"), principal, spec.expires)
    return keys


def _resolve_pepper(config: Mapping[str, Any]) -> bytes | None:
    if config["pepper"] is not None and config["pepper_env"] is not None:
        raise pyservice.ApiError("plugins.auth.pepper", "give 'pepper' or 'pepper_env', not both")
    if config["pepper_env"] is not None:
        try:
            pepper: str | None = read_env(config["pepper_env"], "the API key pepper")
        except ValueError as exc:
            raise pyservice.ApiError("plugins.auth.pepper_env", str(exc)) from None
    else:
        pepper = config["pepper"]
    if pepper is None:
        return None
    raw = pepper.encode("utf-8")
    if len(raw) < MIN_PEPPER_LENGTH:
        raise pyservice.ApiError("plugins.auth.pepper", f"the pepper must be at least {MIN_PEPPER_LENGTH} bytes long")
    return raw


def _build_jwt(spec: JwtSpec) -> JwtVerifier:
    keys = {}
    for kid, key in spec.keys.items():
        where = f"plugins.auth.jwt.keys.{kid}"
        try:
            if key.key_env is not None:
                material = read_env(key.key_env, "the JWT key")
            elif key.key_file is not None:
                try:
                    material = Path(key.key_file).read_text(encoding="utf-8")
                except OSError as exc:
                    raise ValueError(f"cannot read the key file {key.key_file!r} ({exc.strerror})") from None
            else:
                assert key.key is not None
                material = key.key
            keys[kid] = JwtKey.load(key.algorithm, material)
        except ValueError as exc:
            raise pyservice.ApiError(where, str(exc)) from None
    return JwtVerifier(
        keys,
        audience=spec.audience,
        issuer=spec.issuer,
        leeway=spec.leeway,
        principal_claim=spec.principal_claim,
        roles_claim=spec.roles_claim,
    )


def _nonce_store(plugin: Auth) -> NonceStore:
    config = plugin.config
    store = config["nonce_store"]
    if isinstance(store, NonceStore):
        chosen = store
    elif store == "redis":
        if config["redis_url"] is None:
            raise pyservice.ApiError("plugins.auth.redis_url", "nonce_store 'redis' needs a redis_url")
        chosen = RedisNonceStore(config["redis_url"], prefix=config["redis_prefix"], timeout=config["redis_timeout"])
    else:
        chosen = MemoryNonceStore(config["max_nonces"])
    workers = pyservice.worker_processes()
    if not chosen.shared and workers is not None and workers > 1:
        raise pyservice.ApiError(
            "plugins.auth.nonce_store",
            f"a nonce store that is not shared would let a replay through another of the {workers} worker"
            " processes; use nonce_store 'redis'",
        )
    return chosen


def _check_allow(plugin: Auth, operation: pyservice.Operation, allow: AllowRule, modes: tuple[str, ...]) -> None:
    overrides = operation.plugins.get(plugin.name)
    own = isinstance(overrides, Mapping) and "allow" in overrides
    where = f"operations.{operation.name}.plugins.auth.allow" if own else "plugins.auth.allow"
    bare = allow.ambiguous(modes)
    if bare is not None:
        either = " or ".join(repr(f"{mode}:{bare}") for mode in modes)
        raise pyservice.ApiError(
            where,
            f"'principal:{bare}' matches that id proved by any of the modes {', '.join(modes)}, which may name"
            f" different principals: name the scheme ({either}; list several to admit each)",
        )
    for key in sorted(allow.callers):
        scheme = key.partition(":")[0]
        if scheme not in modes:
            raise pyservice.ApiError(
                where, f"{key!r} names the scheme {scheme!r}, which is not among the modes {', '.join(modes) or 'none'}"
            )


def setup_service(plugin: Auth, service: pyservice.Service) -> None:
    """Build the authenticator, and register one request hook per operation the plugin is on for.

    Raises:
        ApiError: a mode without its keys, a secret missing from the
            environment, a nonce store that cannot hold under several
            workers, or a ``nonce_ttl`` shorter than twice ``max_skew``.
    """
    config = plugin.config
    modes: tuple[str, ...] = config["mode"]
    clock: Callable[[], float] = config["clock"] or time.time
    if "signed" in modes and not config["keys"]:
        raise pyservice.ApiError("plugins.auth.keys", "mode 'signed' needs at least one signing key")
    if "api_key" in modes and not config["api_keys"]:
        raise pyservice.ApiError("plugins.auth.api_keys", "mode 'api_key' needs at least one API key")
    if "jwt" in modes and config["jwt"] is None:
        raise pyservice.ApiError("plugins.auth.jwt", "mode 'jwt' needs the 'jwt' settings")
    pepper = _resolve_pepper(config) if "api_key" in modes else None
    if "api_key" in modes and pepper is None:
        raise pyservice.ApiError("plugins.auth.pepper", "mode 'api_key' needs 'pepper' or 'pepper_env'")
    max_skew: int = config["max_skew"]
    nonce_ttl = config["nonce_ttl"] if config["nonce_ttl"] is not None else 2.0 * max_skew
    if nonce_ttl < 2 * max_skew:
        raise pyservice.ApiError(
            "plugins.auth.nonce_ttl", f"expected at least twice max_skew ({2 * max_skew}s), got {nonce_ttl}"
        )
    authenticator = Authenticator(
        modes,
        signing_keys=_resolve_signing_keys(plugin) if "signed" in modes else {},
        api_keys=config["api_keys"] if "api_key" in modes else {},
        pepper=pepper,
        jwt=_build_jwt(config["jwt"]) if "jwt" in modes else None,
        nonce_store=_nonce_store(plugin) if "signed" in modes else None,
        max_skew=max_skew,
        nonce_ttl=nonce_ttl,
        clock=clock,
    )
    plugin.authenticator = authenticator
    trusted = parse_networks(config["trusted_proxies"])
    global_deny = parse_networks(config["deny_from"])
    for name, operation in service.api.operations.items():
        op_config = plugin.operation_config(operation)
        if op_config is None:
            continue
        # A deny list only ever grows per operation: an override cannot drop a service-wide denial.
        deny = global_deny + tuple(n for n in parse_networks(op_config["deny_from"]) if n not in global_deny)
        addresses = AddressRules(parse_networks(op_config["allow_from"]), deny)
        allow = parse_allow(op_config["allow"])
        _check_allow(plugin, operation, allow, modes)
        hook = _operation_hook(name, authenticator, allow, addresses, trusted)
        service.plugin("request", operations=[name], name=plugin.name)(hook)
