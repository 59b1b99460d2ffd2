"""The service side: one hook per throttled operation, composed at start-up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pyservice

from ._backend import Backend, MemoryBackend
from ._exceptions import RequestThrottled, ThrottleUnavailable
from ._rate import MICROSECONDS, Rate
from ._redis import RedisBackend

if TYPE_CHECKING:
    from ._plugin import Throttle

__all__ = ["setup_service"]

logger = logging.getLogger("pyservice.throttle")

_MULTIPROCESS_MESSAGE = (
    "the memory backend keeps limits per worker process, so each worker would allow the whole limit;"
    " use backend 'redis' (shared), or set per_process: true to accept a limit per process"
)


class _Guard:
    """What every throttled operation of one service shares: backend health, warnings, checks."""

    __slots__ = (
        "backend",
        "check_multiprocess",
        "down_until",
        "lock",
        "multiprocess_error",
        "pending",
        "plugin_name",
        "retry_after",
        "retry_interval",
        "suppressed",
        "warn_at",
        "warn_interval",
    )

    def __init__(self, plugin: Throttle, backend: Backend) -> None:
        config = plugin.config
        self.plugin_name = plugin.name
        self.backend = backend
        self.retry_interval: float = config["retry_interval"]
        self.warn_interval: float = config["warn_interval"]
        self.retry_after = str(max(1, -int(-self.retry_interval // 1)))
        self.down_until = 0.0
        self.warn_at = 0.0
        self.suppressed = 0
        self.lock = threading.Lock()
        self.check_multiprocess = not backend.shared and not config["per_process"]
        self.multiprocess_error: str | None = None
        # One flag read per call: true while the first request's check is due, or after it failed.
        self.pending = self.check_multiprocess

    def first_request(self, environ: Mapping[str, Any]) -> None:
        """Run the check that is due on the first request; raises for every call once it failed."""
        if self.check_multiprocess:
            # pyservice serve announces its workers; other servers say so here.
            if environ.get("wsgi.multiprocess"):
                self.multiprocess_error = (
                    f"plugins.{self.plugin_name}.per_process: the server runs several worker processes"
                    f" (environ['wsgi.multiprocess'] is true) and {_MULTIPROCESS_MESSAGE}"
                )
                logger.error("%s", self.multiprocess_error)
            self.check_multiprocess = False
            self.pending = self.multiprocess_error is not None
        if self.multiprocess_error is not None:
            raise RuntimeError(self.multiprocess_error)

    def failed(self, exc: BaseException, closed: bool, operation: str, mark_down: bool = True) -> None:
        """Record a backend failure: skip the backend for a while, warn at most once per interval.

        ``mark_down`` is false for a failure the call's own deadline may
        explain (it ran out while the backend was asked): the backend is not
        skipped for it, so calls sent with tiny deadlines cannot switch
        throttling off for everyone else.
        """
        now = time.monotonic()
        with self.lock:
            if self.retry_interval and mark_down:
                self.down_until = now + self.retry_interval
            if now < self.warn_at:
                self.suppressed += 1
                return
            self.warn_at = now + self.warn_interval
            suppressed, self.suppressed = self.suppressed, 0
        logger.warning(
            "throttle backend unavailable (%s) in %s; failing %s; %d more calls without the backend"
            " since the last warning",
            exc,
            operation,
            "closed" if closed else "open",
            suppressed,
        )

    def skipped(self) -> None:
        """Count a call that did not try the backend, which failed moments ago."""
        with self.lock:
            self.suppressed += 1


def _build_backend(plugin: Throttle) -> Backend:
    config = plugin.config
    chosen = config["backend"]
    key = f"plugins.{plugin.name}.backend"
    if chosen == "memory":
        return MemoryBackend(config["max_keys"])
    if chosen == "redis":
        if not config["redis_url"]:
            raise pyservice.ApiError(f"plugins.{plugin.name}.redis_url", "is required with backend 'redis'")
        return RedisBackend(config["redis_url"], prefix=config["prefix"], timeout=config["timeout"])
    if isinstance(chosen, Backend):
        return chosen
    built = chosen(config)
    if not isinstance(built, Backend):
        raise pyservice.ApiError(key, f"the factory {chosen!r} returned {built!r}, expected a Backend")
    return built


def setup_service(plugin: Throttle, service: pyservice.Service) -> Backend | None:
    """Register one hook per throttled operation; returns the backend, if any."""
    config = plugin.config
    plans = []
    for name, operation in service.api.operations.items():
        op_config = plugin.operation_config(operation)
        if op_config is None or op_config["limit"] is None:
            continue
        plans.append((name, operation, op_config))
    if not plans:
        return None
    backend = _build_backend(plugin)
    if isinstance(backend, RedisBackend):
        service.add_readiness_check(plugin.name, _redis_ready(backend))
    workers = pyservice.worker_processes() or 1
    if not backend.shared and not config["per_process"] and workers > 1:
        raise pyservice.ApiError(
            f"plugins.{plugin.name}.backend",
            f"{backend!r} is not shared and the service runs {workers} worker processes: {_MULTIPROCESS_MESSAGE}",
        )
    clock: Callable[[], float] = config["clock"] or (time.time if backend.shared else time.monotonic)
    guard = _Guard(plugin, backend)
    for name, operation, op_config in plans:
        overrides = operation.plugins.get(plugin.name)
        own = isinstance(overrides, Mapping) and ("limit" in overrides or "burst" in overrides)
        bucket = op_config["bucket"] or (name if own else "*")
        hook = _hook(guard, clock, service.api.name, bucket, op_config)
        scope = "operation" if op_config["key"].startswith("field:") else "request"
        service.plugin(scope, operations=[name], name=plugin.name)(hook)
    return backend


def _redis_ready(backend: RedisBackend) -> Callable[[], str | None]:
    def ready() -> str | None:
        # The backend's short socket timeout bounds it; the reason names no URL.
        try:
            backend.client.ping()
        except Exception as exc:  # any failure means not ready
            return f"Redis does not answer ({type(exc).__name__})"
        return None

    return ready


def _caller_key(context: pyservice.ServiceContext) -> str:
    return context.caller_identity.key


def _identity(key: str, prefix: str) -> Callable[[Any], str]:
    """The function giving a call's backend key: ``prefix``, a kind letter, the identity; built once."""
    kind, _, name = key.partition(":")
    # The caller: context.caller_identity, whose key tells a principal (with the scheme
    # that proved it) from an anonymous address, so no two callers share a budget.
    by_caller_prefix = prefix + "c:"
    if kind == "header":
        environ_key = "HTTP_" + name.upper().replace("-", "_")
        by_header_prefix = prefix + "h:"

        def by_header(context: Any) -> str:
            environ = context.environ
            value = environ.get(environ_key)
            if value:
                return by_header_prefix + value  # type: ignore[no-any-return]
            return by_caller_prefix + _caller_key(context)

        return by_header
    if kind == "field":
        by_field_prefix = prefix + "f:"

        def by_field(context: Any) -> str:
            value = context.request.get(name) if context.request is not None else None
            if value is not None and not isinstance(value, (dict, list)):
                return by_field_prefix + str(value)
            return by_caller_prefix + _caller_key(context)

        return by_field

    def by_caller(context: Any) -> str:
        return by_caller_prefix + _caller_key(context)

    return by_caller


def _hook(
    guard: _Guard, clock: Callable[[], float], service_name: str, bucket: str, config: Mapping[str, Any]
) -> Callable[..., None]:
    # Everything a call does not change is read, built and formatted here, once.
    rate: Rate = config["limit"]
    burst: int = config["burst"] or rate.count
    interval = rate.interval
    capacity = burst * interval
    closed = config["on_error"] == "closed"
    prefix = f"{service_name}/{bucket}/"
    identity = _identity(config["key"], prefix)
    # The default key, built in the hook itself: a function call is a tenth of the hook's cost.
    by_caller = config["key"] == "caller"
    caller_prefix = prefix + "c:"
    take = guard.backend.take
    take_within = guard.backend.take_within
    failed = guard.failed
    monotonic = time.monotonic
    limit_header = ("RateLimit-Limit", str(burst))
    policy_header = ("RateLimit-Policy", f"{rate.count};w={rate.period:g};burst={burst}")
    unavailable_header = ("Retry-After", guard.retry_after)
    refused_message = f"rate limit of {rate} exceeded; retry after %s s"
    operation_scope = config["key"].startswith("field:")

    def throttle(context: Any) -> None:
        if guard.pending:
            guard.first_request(context.environ)
        now = round(clock() * MICROSECONDS)
        down_until = guard.down_until
        if not down_until or monotonic() >= down_until:
            key = caller_prefix + context.caller_identity.key if by_caller else identity(context)
            deadline = context.deadline
            try:
                if deadline is None:
                    allowed, tat = take(key, now, interval, capacity)
                else:
                    # The backend waits no longer than the call has left (and its own timeout).
                    allowed, tat = take_within(key, now, interval, capacity, context.time_left())
            except Exception as exc:  # every failure of any backend gets the policy
                # A failure once the deadline has passed may be the deadline's doing, not the backend's.
                failed(exc, closed, context.operation, deadline is None or monotonic() < deadline)
                _unthrottled(context, closed, unavailable_header)
                return
        else:
            guard.skipped()
            _unthrottled(context, closed, unavailable_header)
            return
        # decide(), written out: the headers' numbers from the same step.
        ahead = tat - now if tat > now else 0
        reset = str(-(-ahead // MICROSECONDS))
        if allowed:
            remaining = (capacity - ahead) // interval
            context.response_headers += (
                limit_header,
                ("RateLimit-Remaining", str(remaining) if remaining > 0 else "0"),
                ("RateLimit-Reset", reset),
                policy_header,
            )
            context.process_request()
            return
        wait = -(-(ahead + interval - capacity) // MICROSECONDS)
        retry_after = str(wait) if wait > 1 else "1"
        context.response_headers += (
            limit_header,
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", reset),
            policy_header,
            ("Retry-After", retry_after),
        )
        raise RequestThrottled(refused_message % retry_after)

    if operation_scope:

        def throttle_operation(request: Any, response: Any, context: Any) -> None:
            throttle(context)

        return throttle_operation
    return throttle


def _unthrottled(context: Any, closed: bool, unavailable_header: tuple[str, str]) -> None:
    """A call the backend could not decide: the ``on_error`` policy."""
    if closed:
        context.response_headers.append(unavailable_header)
        raise ThrottleUnavailable("rate limiting is unavailable; try again later")
    context.process_request()
