"""The cache's call path: lookup, single flight, cross-process lock, degradation."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pyservice import time_left

from ._backend import Backend, BackendUnavailable
from ._entry import encode_error
from ._flight import Flight, Flights
from ._policy import Policy
from ._stats import CacheStats

__all__ = ["Engine", "logger"]

logger = logging.getLogger("pyservice.cache")


class Engine:
    """Runs cached calls against one backend.

    A backend failure is never a failed call: the call runs uncached, the
    backend is left alone for ``retry_interval`` seconds (so a slow backend
    costs one timeout per interval, not one per call), and a warning is
    logged at most once per ``warn_interval``. Nothing waits past the call's
    deadline (``pyservice.time_left()``): a round trip that could outlast it
    (the backend's ``timeout``) is not started, and waiting for another
    thread's or process's answer ends in time.
    """

    def __init__(self, backend: Backend, stats: CacheStats, *, retry_interval: float, warn_interval: float) -> None:
        self.backend = backend
        self.stats = stats
        self.retry_interval = retry_interval
        self.warn_interval = warn_interval
        self._flights = Flights()
        self._down_until = 0.0
        self._next_warning = 0.0
        self._warn_lock = threading.Lock()
        # The longest one backend operation may take; 0 for an in-process store.
        self._bound = backend.timeout

    # -- the call path ------------------------------------------------------

    def serve(self, policy: Policy, key: str, context: Any) -> None:
        """Answer one call from the cache, or run it and store its answer.

        A hit answers (a service's ``context.response_body``, a client's
        ``context.response``) or raises the cached exception without calling
        ``context.process_request()``.
        """
        entry = self._get(key, context)
        if entry is not None and self._replay(policy, entry, context):
            return
        flight, leader = self._flights.join(key)
        if not leader:
            # The leader may itself wait up to lock_timeout for another
            # process before computing: give it that long, and as long again,
            # but never past the call's deadline.
            wait = 2 * policy.lock_timeout
            left = time_left()
            if left is not None and left < wait:
                wait = left
            shared = flight.entry if flight.wait(wait) else None
            if shared is not None and self._replay(policy, shared, context):
                return
            self._compute(policy, key, context, None)
            return
        try:
            self._lead(policy, key, context, flight)
        finally:
            self._flights.land(key, flight)

    def _lead(self, policy: Policy, key: str, context: Any, flight: Flight) -> None:
        deadline = time.monotonic() + policy.lock_timeout
        left = time_left()
        if left is not None:
            # Waiting for another process ends in time for one more round trip.
            deadline = min(deadline, time.monotonic() + left - self._bound)
        token: str | None = None
        while True:
            token = self._acquire(key, policy.lock_timeout, context)
            if token is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break  # the other process is too slow: compute without the lock
            entry = self._wait(key, remaining, context)
            if entry is not None:
                flight.entry = entry
                if self._replay(policy, entry, context):
                    return
                flight.entry = None
                break
        try:
            if token:
                # Another process may have stored the entry between our lookup
                # and the lock: look again before computing. (No token: a store
                # this process alone sees, or none to be had.)
                entry = self._get(key, context)
                if entry is not None:
                    flight.entry = entry
                    if self._replay(policy, entry, context):
                        return
                    flight.entry = None
            self._compute(policy, key, context, flight)
        finally:
            if token:
                self._release(key, token, context)

    def _replay(self, policy: Policy, entry: bytes, context: Any) -> bool:
        answer = policy.read(entry, policy.negative_names)
        if answer is None:
            return False
        self.stats.hit()
        context.cache_outcome = "hit"
        context.annotate(cache="hit")
        if type(answer) is bytes:
            context.response_body = answer  # a service's answer, as it is sent
        elif isinstance(answer, BaseException):
            raise answer
        else:
            policy.fill(context, answer)
        return True

    def _compute(self, policy: Policy, key: str, context: Any, flight: Flight | None) -> None:
        self.stats.add("misses")
        context.cache_outcome = "miss"
        context.annotate(cache="miss")
        try:
            context.process_request()
        except Exception as exc:
            name = policy.negative_name(exc)
            if name is not None:
                entry = encode_error(name, exc.args)
                if entry is not None:
                    self._set(key, entry, policy.lifetime(policy.negative_ttl), context)
                    if flight is not None:
                        flight.entry = entry
            raise
        entry = policy.capture(context)
        if entry is None:
            return
        self._set(key, entry, policy.lifetime(policy.ttl), context)
        if flight is not None:
            flight.entry = entry

    # -- the backend, guarded -----------------------------------------------

    def _usable(self, context: Any) -> bool:
        # A backend that failed lately is left alone, and a call whose
        # deadline leaves less than one round trip does not start one: a
        # backend that stops answering must not hold the call past it.
        if self._down_until and time.monotonic() < self._down_until:
            context.annotate(cache_error="unavailable")
            return False
        if self._bound:
            left = time_left()
            if left is not None and left < self._bound:
                context.annotate(cache_error="deadline")
                return False
        return True

    def _get(self, key: str, context: Any) -> bytes | None:
        # The first look of every call: a healthy in-process store skips _usable().
        if (self._down_until or self._bound) and not self._usable(context):
            return None
        try:
            return self.backend.get(key)
        except BackendUnavailable as exc:
            self.failed(exc, context)
            return None

    def _set(self, key: str, entry: bytes, ttl: float, context: Any) -> None:
        if not self._usable(context):
            return
        try:
            self.backend.set(key, entry, ttl)
        except BackendUnavailable as exc:
            self.failed(exc, context)
        else:
            self.stats.add("stores")

    def _acquire(self, key: str, ttl: float, context: Any) -> str | None:
        if not self._usable(context):
            return ""  # no lock to be had: compute, as without a cache
        try:
            return self.backend.acquire(key, ttl)
        except BackendUnavailable as exc:
            self.failed(exc, context)
            return ""

    def _release(self, key: str, token: str, context: Any) -> None:
        # Skipped, the lock expires on its own after lock_timeout.
        if not self._usable(context):
            return
        try:
            self.backend.release(key, token)
        except BackendUnavailable as exc:
            self.failed(exc, context)

    def _wait(self, key: str, timeout: float, context: Any) -> bytes | None:
        if not self._usable(context):
            return None
        try:
            return self.backend.wait(key, timeout)
        except BackendUnavailable as exc:
            self.failed(exc, context)
            return None

    def delete(self, key: str) -> int:
        """Delete one entry; 0 (with a warning) when the backend is down."""
        try:
            deleted = self.backend.delete(key)
        except BackendUnavailable as exc:
            self.failed(exc)
            return 0
        self.stats.add("invalidations", deleted)
        return deleted

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry under ``prefix``; 0 (with a warning) when the backend is down."""
        try:
            deleted = self.backend.delete_prefix(prefix)
        except BackendUnavailable as exc:
            self.failed(exc)
            return 0
        self.stats.add("invalidations", deleted)
        return deleted

    def failed(self, exc: BackendUnavailable, context: Any = None) -> None:
        """Count a backend failure, stop using it for a while, warn if not warned lately.

        Args:
            exc: the failure.
            context: the call it happened in, annotated ``cache_error:
                unavailable``; ``None`` outside a call (invalidation).
        """
        if context is not None:
            context.annotate(cache_error="unavailable")
        now = time.monotonic()
        self.stats.add("errors")
        self._down_until = now + self.retry_interval
        with self._warn_lock:
            warn = now >= self._next_warning
            if warn:
                self._next_warning = now + self.warn_interval
        if warn:
            logger.warning(
                "cache backend %r unavailable, calls run uncached (retried every %gs, warned every %gs at most): %s",
                self.backend,
                self.retry_interval,
                self.warn_interval,
                exc,
            )
