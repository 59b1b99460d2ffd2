"""The ``idempotency`` plugin: options, checks at start-up, and the hooks of each side."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pyservice import ApiError, Option, Plugin, ServiceContext, worker_processes
from pyservice.checks import non_negative_int, one_of, positive, positive_int
from pyservice.exceptions import is_exception_name

from ._backend import Backend, BackendUnavailable
from ._client import add_key, wait_in_use
from ._exceptions import EXCEPTIONS
from ._memory import MemoryBackend
from ._redis import RedisBackend
from ._service import Guard, Policy, service_hook

if TYPE_CHECKING:
    from pyservice import Client, Operation, Service

__all__ = ["Idempotency", "idempotency_of"]

_BACKENDS = ("memory", "redis")


def _backend(value: str | Backend) -> str | Backend:
    if isinstance(value, str) and value not in _BACKENDS:
        raise ValueError(f"expected one of {', '.join(map(repr, _BACKENDS))} or a Backend instance")
    return value


def _prefix(value: str) -> str:
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("expected a non-empty ASCII prefix without spaces")
    return value


def _exception_names(value: list[Any]) -> tuple[str, ...]:
    if not all(is_exception_name(name) for name in value):
        raise ValueError("expected a list of exception names")
    return tuple(value)


def _key_length(value: int) -> int:
    if not 16 <= value <= 1024:
        raise ValueError("expected from 16 (a key must hold a UUID) to 1024")
    return value


_TTL = Option(
    float, 86_400.0, "Seconds a completed call's answer is replayed for its key.", check=positive, side="service"
)
_RUNNING_TTL = Option(
    float,
    60.0,
    "Seconds a running call's claim lasts if its process dies (at least the call's time left plus 1 s).",
    check=positive,
    side="service",
)
_MAX_ANSWER_SIZE = Option(
    int,
    1 << 20,
    "The largest answer stored, in bytes; a larger one is not replayed (409).",
    check=positive_int,
    side="service",
)
_IN_USE_RETRIES = Option(
    int,
    3,
    "Client: times a call answered 409 'in use' is sent again after Retry-After.",
    check=non_negative_int,
    side="client",
)


class Idempotency(Plugin):
    """Idempotency keys: a call sent twice with the same key runs once, and its answer is replayed.

    On a **client**, every call of a protected operation carries an
    ``Idempotency-Key``: the one the application gives
    (``client.call(op, fields, idempotency_key=...)`` or the header itself),
    else a new UUID, the same on every attempt of that call. A call
    answered 409 ``IdempotencyKeyInUse`` is sent again after its
    ``Retry-After``, within the call's deadline.

    On a **service**, the first answer per caller, operation and key is
    stored (``memory`` for one process, ``redis`` for several workers and
    hosts) and replayed, marked ``Idempotent-Replayed: true``, to every
    duplicate until ``ttl`` ends. A duplicate that arrives while the first
    call runs is answered 409 ``IdempotencyKeyInUse`` with ``Retry-After``;
    the same key with another request 422 ``IdempotencyKeyReused``; no key
    where one is ``required`` 400 ``IdempotencyKeyRequired``. Whitelisted
    exceptions (4xx) are stored and replayed like answers; internal errors,
    protocol errors and "try later" exceptions (5xx, 408, 429) release the
    key so that a retry runs.

    Protected operations: every operation not declared ``"idempotent":
    true``, and an idempotent one whose own ``plugins.idempotency`` entry
    is a mapping; ``"plugins": {"idempotency": false}`` switches it off.

    Attributes:
        backend: where a service keeps its records (``None`` on a client).
    """

    name: ClassVar[str] = "idempotency"
    # Inside authentication, so that each key belongs to the caller it
    # established; outside the database session's hook, so that an answer is
    # stored only once its transaction committed.
    after: ClassVar[tuple[str, ...]] = ("auth",)
    before: ClassVar[tuple[str, ...]] = ("sqlalchemy",)
    options: ClassVar[Mapping[str, Option]] = {
        "backend": Option(
            (str, Backend), "memory", "'memory', 'redis' or a Backend instance.", check=_backend, side="service"
        ),
        "redis_url": Option(
            (str, type(None)), None, "The Redis URL of the 'redis' backend.", secret=True, side="service"
        ),
        "prefix": Option(
            str, "pyservice-idempotency", "The first part of every Redis key.", check=_prefix, side="service"
        ),
        "ttl": _TTL,
        "running_ttl": _RUNNING_TTL,
        "retry_after": Option(
            float, 1.0, "Seconds a 409 'in use' or a 503 tells the caller to wait.", check=positive, side="service"
        ),
        "max_key_length": Option(
            int, 255, "The longest key accepted, in characters.", check=_key_length, side="service"
        ),
        "max_answer_size": _MAX_ANSWER_SIZE,
        "max_entries": Option(
            int, 100_000, "Memory backend: the most records kept.", check=positive_int, side="service"
        ),
        "max_bytes": Option(
            int, 64 << 20, "Memory backend: the most bytes of records kept.", check=positive_int, side="service"
        ),
        "timeout": Option(
            float,
            0.25,
            "Redis backend: seconds one round trip may take, connecting included.",
            check=positive,
            side="service",
        ),
        "on_error": Option(
            str,
            "closed",
            "When the store fails: 'closed' answers 503 without running the call, 'open' runs it unprotected.",
            check=one_of(("closed", "open")),
            side="service",
        ),
        "retry_interval": Option(
            float, 1.0, "Seconds the store is left alone after it failed.", check=positive, side="service"
        ),
        "warn_interval": Option(float, 60.0, "The least seconds between two warnings.", check=positive, side="service"),
        "in_use_retries": _IN_USE_RETRIES,
        "max_wait": Option(
            float,
            10.0,
            "Client: the most seconds spent waiting out 409 'in use' answers.",
            check=positive,
            side="client",
        ),
    }
    operation_options: ClassVar[Mapping[str, Option]] = {
        "required": Option(bool, False, "A call without an Idempotency-Key is answered 400."),
        "ttl": _TTL,
        "running_ttl": _RUNNING_TTL,
        "max_answer_size": _MAX_ANSWER_SIZE,
        "transient": Option(
            list, [], "Whitelisted exceptions that release the key instead of being replayed.", check=_exception_names
        ),
        "in_use_retries": _IN_USE_RETRIES,
    }
    exceptions: ClassVar[Mapping[str, int]] = EXCEPTIONS

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.backend: Backend | None = None
        self._guard: Guard | None = None
        self._operation_defaults = {
            key: option.default for key, option in self.operation_options.items() if key not in config
        }

    def setup(self, owner: Service | Client) -> None:
        """Register the hooks of the owner's side on the protected operations."""
        protected = [op for op in owner.api.operations.values() if self._protects(op)]
        if not protected:
            return
        if owner.side == "client":
            self._setup_client(owner, protected)  # type: ignore[arg-type]
        else:
            self._setup_service(owner, protected)  # type: ignore[arg-type]

    def _settings(self, operation: Operation) -> Mapping[str, Any]:
        # The core merges an operation's entry over the plugin's config; the
        # keys only an operation may set start from their defaults.
        merged = self.operation_config(operation) or self.config
        return {**self._operation_defaults, **merged}

    def _protects(self, operation: Operation) -> bool:
        entry = operation.plugins.get(self.name)
        if entry is False:
            return False
        return not operation.idempotent or isinstance(entry, Mapping)

    def _setup_client(self, client: Client, protected: list[Operation]) -> None:
        names = [op.name for op in protected]
        client.plugin("request", operations=names, name=self.name)(add_key)
        for operation in protected:
            config = self._settings(operation)
            if config["in_use_retries"]:
                hook = wait_in_use(config["in_use_retries"], self.config["max_wait"])
                client.plugin("attempt", operations=[operation.name], name=self.name)(hook)

    def _setup_service(self, service: Service, protected: list[Operation]) -> None:
        config = self.config
        backend = self.backend = self._make_backend(service)
        guard = self._guard = Guard(
            backend,
            timeout=config["timeout"],
            on_error=config["on_error"],
            retry_interval=config["retry_interval"],
            warn_interval=config["warn_interval"],
            retry_after=config["retry_after"],
        )
        # context.idempotency_key: the call's key, set by the hook; None for a call that sent none.
        try:
            ServiceContext.add_lazy_attribute("idempotency_key", _no_key, owner=self.name)
        except ValueError as exc:
            raise ApiError(f"plugins.{self.name}", str(exc)) from None
        api = service.api
        for operation in protected:
            op_config = self._settings(operation)
            path = f"operations.{operation.name}.plugins.{self.name}"
            for name in op_config["transient"]:
                if name not in api.exceptions and name not in operation.exceptions:
                    raise ApiError(f"{path}.transient", f"{name!r} is not one of the api's exceptions")
            policy = Policy(
                operation.name,
                # Per api, version and operation: the same key sent to two operations is two keys.
                f"{config['prefix']}:{api.name}:{api.version}:{operation.name}:",
                required=op_config["required"],
                ttl=op_config["ttl"],
                running_ttl=op_config["running_ttl"],
                max_key_length=config["max_key_length"],
                max_answer_size=op_config["max_answer_size"],
                transient=frozenset(op_config["transient"]),
            )
            service.plugin("request", operations=[operation.name], name=self.name)(service_hook(guard, policy))
        if backend.shared:
            service.add_readiness_check(self.name, self._ready)

    def _make_backend(self, service: Service) -> Backend:
        config = self.config
        chosen = config["backend"]
        if isinstance(chosen, Backend):
            return chosen
        if chosen == "memory":
            workers = worker_processes() or 1
            if workers > 1:
                raise ApiError(
                    f"plugins.{self.name}.backend",
                    f"'memory' keeps keys per process and the service runs {workers} worker processes, so a"
                    " retry that reaches another worker would run again: use 'redis'",
                )
            return MemoryBackend(config["max_entries"], config["max_bytes"])
        url = config["redis_url"]
        if url is None:
            raise ApiError(f"plugins.{self.name}.redis_url", "is required when backend is 'redis'")
        return RedisBackend(url, timeout=config["timeout"])

    def _ready(self) -> str | None:
        assert self.backend is not None
        try:
            self.backend.ping(time.monotonic() + self.config["timeout"])
        except BackendUnavailable as exc:
            # The reason names no URL.
            return f"Redis does not answer ({type(exc.__cause__).__name__})"
        return None

    def close(self) -> None:
        """Release the backend's connections."""
        if self.backend is not None:
            self.backend.close()


def _no_key(context: ServiceContext) -> None:
    return None


def idempotency_of(owner: Service | Client) -> Idempotency:
    """The idempotency plugin of a Service or Client.

    Raises:
        LookupError: ``owner`` has no idempotency plugin.
    """
    for plugin in owner.plugins:
        if isinstance(plugin, Idempotency):
            return plugin
    raise LookupError(f"{owner!r} has no idempotency plugin (its plugins: {[p.name for p in owner.plugins]})")
