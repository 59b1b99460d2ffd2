"""The ``cache`` plugin: caches the answers of the operations that declare a scope."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pyservice import ApiError, Caller, Container, Option, Plugin
from pyservice.checks import non_negative, positive, positive_int
from pyservice.exceptions import exception_class, is_exception_name

from ._backend import Backend
from ._engine import Engine
from ._handle import CallCache
from ._keys import KeyMaker, scope_prefix
from ._memory import MemoryBackend
from ._near import NearBackend
from ._policy import SCOPES, Policy, client_caller, service_caller
from ._redis import RedisBackend
from ._stats import CacheStats

if TYPE_CHECKING:
    from pyservice import Client, Operation, Service

__all__ = ["Cache", "cache_of"]

_BACKENDS = ("memory", "redis")
_SIDES = ("service", "client")


def _fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError("expected a fraction from 0 up to (not including) 1")
    return float(value)


def _backend(value: str | Backend) -> str | Backend:
    if isinstance(value, str) and value not in _BACKENDS:
        raise ValueError(f"expected one of {', '.join(map(repr, _BACKENDS))} or a Backend instance")
    return value


def _prefix(value: str) -> str:
    if not value or not value.isprintable() or " " in value:
        raise ValueError("expected a non-empty prefix without spaces")
    return value


def _sides(value: list[Any]) -> tuple[str, ...]:
    if not value or any(side not in _SIDES for side in value) or len(set(value)) != len(value):
        raise ValueError("expected a list of 'service' and/or 'client', each at most once")
    return tuple(value)


def _scope(value: str) -> str:
    if value not in SCOPES:
        raise ValueError("expected 'public' (one answer for every caller) or 'caller' (one answer per caller)")
    return value


def _exception_names(value: list[Any]) -> tuple[str, ...]:
    if not all(is_exception_name(name) for name in value):
        raise ValueError("expected a list of exception names")
    return tuple(value)


def _header_names(value: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(name, str) and name and name.isascii() and ":" not in name for name in value):
        raise ValueError("expected a list of HTTP header names")
    return tuple(value)


_TTL = Option(float, 60.0, "Seconds a successful answer is kept, before jitter.", check=positive)
_NEGATIVE_TTL = Option(float, 5.0, "Seconds a cached exception is kept, before jitter.", check=positive)
_JITTER = Option(float, 0.1, "Fraction of a TTL taken off at random, so keys expire apart.", check=_fraction)
_LOCK_TIMEOUT = Option(
    float, 5.0, "Seconds concurrent misses of one key wait for the call computing it.", check=positive
)
_VARY_HEADERS = Option(
    list,
    ["Authorization", "Cookie"],
    "Client side: the outgoing headers that identify the caller of a caller-scoped operation.",
    check=_header_names,
)


class Cache(Plugin):
    """Caches the answers of the operations that declare a cache scope.

    An operation is cached when its ``plugins.cache`` entry names a
    ``scope``: ``"public"`` (one answer for every caller) or ``"caller"``
    (one per caller; on a service the caller is ``context.caller_identity``,
    on a client its credential identity, set by the auth plugin listed
    before this one, and the values of ``vary_headers``; a client call with
    neither is not cached).
    There is no default scope, so no operation shares answers between
    callers by omission. A hit fills the response without calling
    ``context.process_request()``: the handler (on a client, the HTTP
    exchange) and the operation hooks registered after this plugin do not
    run.

    Every call of an operation this plugin applies to gets ``context.cache``
    (a :class:`~pyservice_cache.CallCache`, for invalidation) and, for
    cached operations, ``context.cache_outcome``: ``"hit"``, ``"miss"`` or
    ``"bypass"``.

    Attributes:
        backend: where entries live.
        stats: the counters of this instance.
    """

    name: ClassVar[str] = "cache"
    # After auth (a per-caller entry needs the caller; on a client, its credential identity)
    # and throttle (a hit still counts against the limit), wherever the api lists them.
    after: ClassVar[tuple[str, ...]] = ("auth", "throttle")
    options: ClassVar[Mapping[str, Option]] = {
        "backend": Option((str, Backend), "memory", "'memory', 'redis' or a Backend instance.", check=_backend),
        "redis_url": Option((str, type(None)), None, "The Redis URL of the 'redis' backend.", secret=True),
        "prefix": Option(str, "pyservice-cache", "The first part of every key.", check=_prefix),
        "sides": Option(list, ["service"], "Which sides cache: 'service' and/or 'client'.", check=_sides),
        "ttl": _TTL,
        "negative_ttl": _NEGATIVE_TTL,
        "jitter": _JITTER,
        "lock_timeout": _LOCK_TIMEOUT,
        "max_entries": Option(int, 10_000, "Memory backend: the most entries kept.", check=positive_int),
        "max_bytes": Option(int, 64 << 20, "Memory backend: the approximate most bytes kept.", check=positive_int),
        "socket_timeout": Option(float, 0.1, "Redis backend: seconds per connect and per command.", check=positive),
        "local_ttl": Option(
            float,
            0.0,
            "Redis backend: seconds each process serves its own copy of an entry it read, without asking Redis"
            " (0: never); another process's invalidation may then be seen that much later.",
            check=non_negative,
        ),
        "retry_interval": Option(float, 1.0, "Seconds the backend is left alone after it failed.", check=positive),
        "warn_interval": Option(
            float, 60.0, "The least seconds between two 'backend unavailable' warnings.", check=positive
        ),
        "vary_headers": _VARY_HEADERS,
    }
    operation_options: ClassVar[Mapping[str, Option]] = {
        "scope": Option(str, None, "'public' or 'caller'; required for a cached operation.", check=_scope),
        "ttl": _TTL,
        "negative": Option(
            list, [], "Whitelisted exceptions cached for negative_ttl (opt-in).", check=_exception_names
        ),
        "negative_ttl": _NEGATIVE_TTL,
        "jitter": _JITTER,
        "lock_timeout": _LOCK_TIMEOUT,
        "vary_headers": _VARY_HEADERS,
    }

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._redis: RedisBackend | None = None  # the Redis backend the plugin built, if it did
        self.backend = self._make_backend(config)
        self.stats = CacheStats(self.backend)
        self._engine = Engine(
            self.backend,
            self.stats,
            retry_interval=config["retry_interval"],
            warn_interval=config["warn_interval"],
        )
        self._policies: dict[str, Policy] = {}
        self._scope_prefix = ""

    def _make_backend(self, config: Mapping[str, Any]) -> Backend:
        backend = config["backend"]
        if config["local_ttl"] and backend != "redis":
            raise ApiError(
                f"plugins.{self.name}.local_ttl", "keeps copies of a Redis backend's entries: set backend 'redis'"
            )
        if isinstance(backend, Backend):
            return backend
        if backend == "memory":
            return MemoryBackend(config["max_entries"], config["max_bytes"])
        url = config["redis_url"]
        if url is None:
            raise ApiError(f"plugins.{self.name}.redis_url", "is required when backend is 'redis'")
        self._redis = RedisBackend(url, socket_timeout=config["socket_timeout"])
        if config["local_ttl"]:
            return NearBackend(self._redis, config["local_ttl"], config["max_entries"], config["max_bytes"])
        return self._redis

    def setup(self, owner: Service | Client) -> None:
        """Resolve each cached operation's policy and register the hooks."""
        side = owner.side
        if side not in self.config["sides"]:
            return
        api = owner.api
        self._scope_prefix = scope_prefix(self.config["prefix"], side, api.name)
        uncached = []
        for operation in api.operations.values():
            entry = operation.plugins.get(self.name)
            if entry is False:
                continue
            if entry is None:
                uncached.append(operation.name)
                continue
            policy = self._policy(owner, operation)
            self._policies[operation.name] = policy
            if side == "service":
                # Before decoding, inside authentication and throttling wherever
                # the api lists them: a hit sends the stored bytes as they are.
                hook = self._service_hook(policy)
                owner.plugin("request", operations=[operation.name], name=self.name, innermost=True)(hook)
            else:
                owner.plugin("operation", operations=[operation.name], name=self.name)(self._client_hook(policy))
        if uncached:
            owner.plugin("operation", operations=uncached, name=self.name)(self._attach)
        if side == "service" and self._redis is not None:
            owner.add_readiness_check(self.name, self._redis_ready)

    def _redis_ready(self) -> str | None:
        # The backend's short socket timeout bounds it; the reason names no URL.
        try:
            self._redis.client.ping()  # type: ignore[union-attr]
        except Exception as exc:  # any failure means not ready
            return f"Redis does not answer ({type(exc).__name__})"
        return None

    def _policy(self, owner: Service | Client, operation: Operation) -> Policy:
        config = self.operation_config(operation) or self.config
        path = f"operations.{operation.name}.plugins.{self.name}"
        scope = config.get("scope")
        if scope is None:
            raise ApiError(
                f"{path}.scope",
                "is required for a cached operation: 'public' (one answer for every caller)"
                " or 'caller' (one answer per caller)",
            )
        negative: dict[type[BaseException], str] = {}
        for name in config.get("negative") or ():
            if name not in owner.api.exceptions:
                known = ", ".join(sorted(owner.api.exceptions)) or "none"
                raise ApiError(f"{path}.negative", f"{name!r} is not one of the api's exceptions ({known})")
            negative[exception_class(name)] = name
        caller: Callable[[Any], Any] | None = None
        vary_headers: tuple[str, ...] = ()
        if scope == "caller":
            if owner.side == "service":
                caller = service_caller
            else:
                vary_headers = tuple(config["vary_headers"])
                caller = client_caller(vary_headers)
        api = owner.api
        return Policy(
            operation.name,
            scope,
            KeyMaker(self.config["prefix"], owner.side, api.name, api.version, operation.name),
            ttl=config["ttl"],
            negative_ttl=config["negative_ttl"],
            jitter=config["jitter"],
            lock_timeout=config["lock_timeout"],
            negative=negative,
            caller=caller,
            side=owner.side,
            vary_headers=vary_headers,
        )

    def _service_hook(self, policy: Policy) -> Callable[[Any], None]:
        engine = self._engine
        stats = self.stats
        body_key = policy.keys.body_key
        caller_of = policy.caller
        plugin = self

        def cache(context: Any) -> None:
            # The request scope, before decoding: the key is made from the raw
            # body, and a hit answers with the stored bytes.
            caller = None
            key = None
            if caller_of is None or (caller := caller_of(context)) is not None:
                key = body_key(context.body, caller)
            context.cache = CallCache(plugin, context)
            if key is None:
                _bypass(stats, context)
                return
            engine.serve(policy, key, context)

        cache.__qualname__ = f"Cache.{policy.operation}"
        return cache

    def _client_hook(self, policy: Policy) -> Callable[[Container, Container, Any], None]:
        engine = self._engine
        stats = self.stats
        keys = policy.keys
        caller_of = policy.caller

        def cache(request: Container, response: Container, context: Any) -> None:
            context.cache = CallCache(self, context)
            caller = None
            if caller_of is not None:
                caller = caller_of(context)
            try:
                key = keys.key(request, caller) if caller is not None or caller_of is None else None
            except TypeError:  # not JSON: the call itself will say why
                key = None
            if key is None:
                _bypass(stats, context)
                return
            engine.serve(policy, key, context)

        cache.__qualname__ = f"Cache.{policy.operation}"
        return cache

    def _attach(self, request: Container, response: Container, context: Any) -> None:
        context.cache = CallCache(self, context)
        context.process_request()

    # -- the application's side ---------------------------------------------

    @property
    def operations(self) -> dict[str, str]:
        """The cached operations of this side, with their scopes."""
        return {name: policy.scope for name, policy in self._policies.items()}

    def _policy_of(self, operation: str) -> Policy:
        policy = self._policies.get(operation)
        if policy is None:
            cached = ", ".join(sorted(self._policies)) or "none"
            raise ValueError(f"operation {operation!r} is not cached here (cached: {cached})")
        return policy

    def caller_of(self, operation: str, context: Any) -> Any:
        """The caller identity ``operation``'s keys use for the call of ``context``.

        ``None`` for a public operation, or when the call has no identity.
        On a service, the call's ``context.caller_identity`` (a
        :class:`pyservice.Caller`); on a client, the list of its credential
        identity's key and its ``vary_headers`` values.

        Raises:
            ValueError: ``operation`` is not cached by this plugin.
        """
        policy = self._policy_of(operation)
        caller = policy.caller
        if caller is None or (key := caller(context)) is None:
            return None
        return context.caller_identity if policy.side == "service" else key

    def key_for(self, operation: str, request: Mapping[str, Any], caller: Any = None) -> str:
        """The key of ``operation``'s answer to ``request``.

        Args:
            operation: a cached operation.
            request: the request fields.
            caller: the caller, for a caller-scoped operation: a
                :class:`pyservice.Caller` (``context.caller_identity`` of a
                service call, ``Caller.anonymous("10.0.0.9")``; on a client
                the credential identity, with no ``vary_headers`` values), or
                what :meth:`caller_of` returned for a call.

        Raises:
            ValueError: ``operation`` is not cached, or is caller-scoped and
                ``caller`` is missing.
            TypeError: ``request`` or ``caller`` is not JSON, or a service's
                ``caller`` is a bare string (an address and a principal's id
                could be the same string: pass a ``pyservice.Caller``).
        """
        policy = self._policy_of(operation)
        if policy.caller is None:
            caller = None
        elif caller is None:
            raise ValueError(f"operation {operation!r} is cached per caller: pass caller=")
        elif isinstance(caller, Caller):
            caller = caller.key if policy.side == "service" else [caller.key, *(None for _ in policy.vary_headers)]
        elif policy.side == "service":
            raise TypeError(
                f"expected a pyservice.Caller for caller= (such as Caller.anonymous({caller!r})), got {caller!r}"
            )
        return policy.keys.key(request, caller)

    def invalidate(self, operation: str, request: Mapping[str, Any] | None = None, *, caller: Any = None) -> int:
        """Delete the answer of ``operation`` to ``request``, or all its answers.

        Args:
            operation: a cached operation.
            request: the request whose answer to delete; every answer of the
                operation (every caller's) when omitted.
            caller: for a caller-scoped operation and a request, whose answer.

        Returns:
            How many entries were deleted; 0 when the backend is unavailable
            (a warning is logged, and ``stats.errors`` counts it).

        Raises:
            ValueError: see :meth:`key_for`.
        """
        if request is None:
            return self._engine.delete_prefix(self._policy_of(operation).keys.operation_prefix)
        return self._engine.delete(self.key_for(operation, request, caller))

    def invalidate_key(self, key: str) -> int:
        """Delete the entry under ``key`` (from :meth:`key_for`); returns how many."""
        return self._engine.delete(key)

    def invalidate_all(self) -> int:
        """Delete every answer of this side of this api; returns how many."""
        if not self._scope_prefix:
            return 0
        return self._engine.delete_prefix(self._scope_prefix)

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()

    def stop(self, owner: Service | Client) -> None:
        """Close the connections of a backend the plugin built, when the process stops.

        Each worker closes its own (pyservice-core's per-process lifecycle);
        a ``Backend`` the application gave is the application's to close.
        """
        if isinstance(self.config["backend"], str):
            self.backend.close()


def cache_of(owner: Service | Client) -> Cache:
    """The cache plugin of a Service or Client.

    Raises:
        LookupError: ``owner`` has no cache plugin.
    """
    for plugin in owner.plugins:
        if isinstance(plugin, Cache):
            return plugin
    raise LookupError(f"{owner!r} has no cache plugin (its plugins: {[p.name for p in owner.plugins]})")


def _bypass(stats: CacheStats, context: Any) -> None:
    # A call that cannot be keyed (no caller for a caller-scoped entry, a
    # request that is not JSON) goes on uncached, on either side.
    stats.add("bypasses")
    context.cache_outcome = "bypass"
    context.annotate(cache="bypass")
    context.process_request()
