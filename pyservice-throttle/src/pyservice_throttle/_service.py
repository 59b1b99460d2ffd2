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
from ._gcra import decide
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

    def first_request(self, environ: Mapping[str, Any]) -> None:
        # pyservice serve announces its workers; other servers say so here.
        if environ.get("wsgi.multiprocess"):
            self.multiprocess_error = (
                f"plugins.{self.plugin_name}.per_process: the server runs several worker processes"
                f" (environ['wsgi.multiprocess'] is true) and {_MULTIPROCESS_MESSAGE}"
            )
            logger.error("%s", self.multiprocess_error)
        self.check_multiprocess = False

    def failed(self, exc: BaseException, closed: bool, operation: str) -> None:
        """Record a backend failure: skip the backend for a while, warn at most once per interval."""
        now = time.monotonic()
        with self.lock:
            if self.retry_interval:
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
    if any(op_config["key"] == "caller" for _, _, op_config in plans):
        _check_identity_order(plugin, service)
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


def _check_identity_order(plugin: Throttle, service: pyservice.Service) -> None:
    # The auth plugin sets context.caller; behind it, every call would be keyed
    # by the peer address (the proxy's, behind one) without anyone noticing.
    names = list(service.api.plugins)
    if "auth" in names and names.index("auth") > names.index(plugin.name):
        raise pyservice.ApiError(
            "plugins",
            f"'auth' is listed after {plugin.name!r}: list it first, so the throttle keys on the caller it"
            " authenticates rather than on the peer address",
        )


def _identity(key: str) -> Callable[[Any], str]:
    kind, _, name = key.partition(":")
    if kind == "header":
        environ_key = "HTTP_" + name.upper().replace("-", "_")

        def by_header(context: Any) -> str:
            value = context.environ.get(environ_key)
            if value:
                return "h:" + value  # type: ignore[no-any-return]
            return "c:" + (context.caller or context.remote_addr or "")

        return by_header
    if kind == "field":

        def by_field(context: Any) -> str:
            value = context.request.get(name) if context.request is not None else None
            if value is not None and not isinstance(value, (dict, list)):
                return "f:" + str(value)
            return "c:" + (context.caller or context.remote_addr or "")

        return by_field

    def by_caller(context: Any) -> str:
        return "c:" + (context.caller or context.remote_addr or "")

    return by_caller


def _hook(
    guard: _Guard, clock: Callable[[], float], service_name: str, bucket: str, config: Mapping[str, Any]
) -> Callable[..., None]:
    rate: Rate = config["limit"]
    burst: int = config["burst"] or rate.count
    interval = rate.interval
    capacity = burst * interval
    closed = config["on_error"] == "closed"
    prefix = f"{service_name}/{bucket}/"
    identity = _identity(config["key"])
    take = guard.backend.take
    failed = guard.failed
    limit_header = ("RateLimit-Limit", str(burst))
    policy_header = ("RateLimit-Policy", f"{rate.count};w={rate.period:g};burst={burst}")
    unavailable_header = ("Retry-After", guard.retry_after)
    operation_scope = config["key"].startswith("field:")

    def throttle(context: Any) -> None:
        if guard.check_multiprocess:
            guard.first_request(context.environ)
        if guard.multiprocess_error is not None:
            raise RuntimeError(guard.multiprocess_error)
        now = round(clock() * MICROSECONDS)
        outcome: tuple[bool, int] | None = None
        if not guard.down_until or time.monotonic() >= guard.down_until:
            try:
                outcome = take(prefix + identity(context), now, interval, capacity)
            except Exception as exc:  # every failure of any backend gets the policy
                failed(exc, closed, context.operation)
        else:
            guard.skipped()
        if outcome is None:
            if closed:
                context.response_headers.append(unavailable_header)
                raise ThrottleUnavailable("rate limiting is unavailable; try again later")
            context.process_request()
            return
        allowed, tat = outcome
        decision = decide(allowed, tat, now, interval, capacity)
        headers = context.response_headers
        headers.append(limit_header)
        headers.append(("RateLimit-Remaining", str(decision.remaining)))
        headers.append(("RateLimit-Reset", str(decision.reset)))
        headers.append(policy_header)
        if not allowed:
            retry_after = str(decision.retry_after)
            headers.append(("Retry-After", retry_after))
            raise RequestThrottled(f"rate limit of {rate} exceeded; retry after {retry_after} s")
        context.process_request()

    if operation_scope:

        def throttle_operation(request: Any, response: Any, context: Any) -> None:
            throttle(context)

        return throttle_operation
    return throttle
