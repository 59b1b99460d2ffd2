"""How one operation is cached: its scope, TTLs and key maker, resolved at start-up."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from ._entry import decode, decode_body, encode_answer, encode_body
from ._keys import KeyMaker

__all__ = ["SCOPES", "Policy", "client_caller", "service_caller"]

#: The scopes a cached operation declares: one answer for everyone, or one per caller.
SCOPES = ("public", "caller")


def service_caller(context: Any) -> Any:
    """The caller a service keys on: ``context.caller_identity.key``.

    ``"jwt:alice"``, ``"api_key:billing"``, ``"anonymous:127.0.0.1"``: a
    principal and an anonymous address never share a key. ``None`` (the
    call is not cached) for an anonymous call without an address, as over a
    Unix socket, where every caller would share one entry.
    """
    identity = context.caller_identity
    if identity.kind == "anonymous" and identity.id is None:
        return None
    return identity.key


def client_caller(vary_headers: tuple[str, ...]) -> Callable[[Any], Any]:
    """The caller a client keys on: its ``context.caller_identity`` and the values of its outgoing ``vary_headers``.

    The identity is the credential the client's plugins send, by fingerprint
    (pyservice-auth sets it before the cache runs; its attempt hook adds the
    ``Authorization`` header only later). ``None`` (the call is not cached)
    when there is neither an identity nor any of the headers: nothing tells
    this client's callers apart, so no entry may be shared.
    """
    wanted = tuple(name.lower() for name in vary_headers)

    def caller(context: Any) -> Any:
        # Read with a default: a core older than pyservice.Caller has no such attribute.
        identity = getattr(context, "caller_identity", None)
        headers = {name.lower(): value for name, value in context.headers.items()}
        values = [headers.get(name) for name in wanted]
        if identity is None and not any(value is not None for value in values):
            return None
        return [None if identity is None else identity.key, *values]

    return caller


class Policy:
    """One cached operation's settings.

    Attributes:
        operation: the operation's name.
        scope: ``"public"`` or ``"caller"``.
        ttl: seconds a successful answer lives, before jitter.
        negative_ttl: seconds a whitelisted exception lives, before jitter.
        jitter: the fraction of a TTL taken off at random.
        lock_timeout: seconds a missing key's computation may hold others waiting.
        negative: exception classes replayed from the cache, to their wire names.
        negative_names: those names, for reading entries back.
        keys: the operation's key maker.
        caller: the caller's identity from a context; ``None`` for public
            operations. Returns ``None`` when a call has no identity.
        side: ``"service"`` or ``"client"``.
        vary_headers: on a client's caller-scoped operation, the outgoing
            headers that are part of the caller.
        read: reads an entry back: the answer (a service's encoded bytes, a
            client's fields), the exception to raise, or ``None``.
        fill: puts a client's read answer (fields) in the call's context; a
            service's (bytes) becomes ``context.response_body``.
        capture: the entry of a call that ran, or ``None`` when it is not
            cached.
    """

    __slots__ = (
        "caller",
        "capture",
        "fill",
        "jitter",
        "keys",
        "lock_timeout",
        "negative",
        "negative_names",
        "negative_ttl",
        "operation",
        "read",
        "scope",
        "side",
        "ttl",
        "vary_headers",
    )

    def __init__(
        self,
        operation: str,
        scope: str,
        keys: KeyMaker,
        *,
        ttl: float,
        negative_ttl: float,
        jitter: float,
        lock_timeout: float,
        negative: Mapping[type[BaseException], str],
        caller: Callable[[Any], Any] | None,
        side: str = "service",
        vary_headers: tuple[str, ...] = (),
    ) -> None:
        self.operation = operation
        self.scope = scope
        self.keys = keys
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.jitter = jitter
        self.lock_timeout = lock_timeout
        self.negative = tuple(negative.items())
        self.negative_names = frozenset(negative.values())
        self.caller = caller
        self.side = side
        self.vary_headers = vary_headers
        # A service answers from the request scope, before decoding: it keeps
        # and sends the encoded answer. A client keeps and fills the fields.
        self.read: Callable[[bytes, frozenset[str]], Any] = decode_body if side == "service" else decode
        self.fill: Callable[[Any, Any], None] = _fill_fields
        self.capture: Callable[[Any], bytes | None] = _capture_body if side == "service" else _capture_fields

    def negative_name(self, exc: BaseException) -> str | None:
        """The wire name to store ``exc`` under, or ``None`` when it is not cached."""
        for cls, name in self.negative:
            if isinstance(exc, cls):
                return name
        return None

    def lifetime(self, ttl: float) -> float:
        """``ttl`` shortened by up to ``jitter`` of itself, so keys written together expire apart."""
        return ttl * (1.0 - self.jitter * random.random())  # noqa: S311 - spreading, not security


def _fill_fields(context: Any, fields: dict[str, Any]) -> None:
    context.response.update(fields)


def _capture_body(context: Any) -> bytes | None:
    # A status changed by the handler or an inner hook made this more than an answer.
    if context.status != 200:
        return None
    body: bytes | None = context.response_body
    if body is None:
        # An inner request-scope hook stopped the call without encoding.
        return encode_answer(context.response)
    return encode_body(body)


def _capture_fields(context: Any) -> bytes | None:
    if getattr(context, "status", 200) != 200:
        return None
    return encode_answer(context.response)
