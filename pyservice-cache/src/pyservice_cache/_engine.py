"""The cache's call path: lookup, single flight, cross-process lock, degradation."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ._backend import Backend, BackendUnavailable
from ._entry import decode, encode_answer, encode_error
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
    logged at most once per ``warn_interval``.
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

    # -- the call path ------------------------------------------------------

    def serve(self, policy: Policy, key: str, context: Any) -> None:
        """Answer one call from the cache, or run it and store its answer.

        A hit fills ``context.response`` (or raises the cached exception)
        without calling ``context.process_request()``.
        """
        entry = self._get(key)
        if entry is not None and self._replay(policy, entry, context):
            return
        flight, leader = self._flights.join(key)
        if not leader:
            # The leader may itself wait up to lock_timeout for another
            # process before computing: give it that long, and as long again.
            shared = flight.entry if flight.done.wait(2 * policy.lock_timeout) else None
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
        token: str | None = None
        while True:
            token = self._acquire(key, policy.lock_timeout)
            if token is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break  # the other process is too slow: compute without the lock
            entry = self._wait(key, remaining)
            if entry is not None:
                flight.entry = entry
                if self._replay(policy, entry, context):
                    return
                flight.entry = None
                break
        try:
            if token is not None:
                # Another process (or thread) may have stored the entry between
                # our lookup and the lock: look again before computing.
                entry = self._get(key)
                if entry is not None:
                    flight.entry = entry
                    if self._replay(policy, entry, context):
                        return
                    flight.entry = None
            self._compute(policy, key, context, flight)
        finally:
            if token:
                self._release(key, token)

    def _replay(self, policy: Policy, entry: bytes, context: Any) -> bool:
        answer = decode(entry, policy.negative_names)
        if answer is None:
            return False
        self.stats.add("hits")
        context.cache_outcome = "hit"
        context.annotate(cache="hit")
        if isinstance(answer, BaseException):
            raise answer
        context.response.update(answer)
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
                    self._set(key, entry, policy.lifetime(policy.negative_ttl))
                    if flight is not None:
                        flight.entry = entry
            raise
        # An inner hook that changed the status made this more than an answer.
        if getattr(context, "status", 200) != 200:
            return
        entry = encode_answer(context.response)
        if entry is None:
            return
        self._set(key, entry, policy.lifetime(policy.ttl))
        if flight is not None:
            flight.entry = entry

    # -- the backend, guarded -----------------------------------------------

    def _available(self) -> bool:
        return self._down_until == 0.0 or time.monotonic() >= self._down_until

    def _get(self, key: str) -> bytes | None:
        if not self._available():
            return None
        try:
            return self.backend.get(key)
        except BackendUnavailable as exc:
            self.failed(exc)
            return None

    def _set(self, key: str, entry: bytes, ttl: float) -> None:
        if not self._available():
            return
        try:
            self.backend.set(key, entry, ttl)
        except BackendUnavailable as exc:
            self.failed(exc)
        else:
            self.stats.add("stores")

    def _acquire(self, key: str, ttl: float) -> str | None:
        if not self._available():
            return ""
        try:
            return self.backend.acquire(key, ttl)
        except BackendUnavailable as exc:
            self.failed(exc)
            return ""  # no lock to be had: compute, as without a cache

    def _release(self, key: str, token: str) -> None:
        try:
            self.backend.release(key, token)
        except BackendUnavailable as exc:
            # The lock expires on its own after lock_timeout.
            self.failed(exc)

    def _wait(self, key: str, timeout: float) -> bytes | None:
        try:
            return self.backend.wait(key, timeout)
        except BackendUnavailable as exc:
            self.failed(exc)
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

    def failed(self, exc: BackendUnavailable) -> None:
        """Count a backend failure, stop using it for a while, warn if not warned lately."""
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
