"""The backend interface, and the in-memory backend."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import ClassVar

__all__ = ["Backend", "BackendUnavailable", "MemoryBackend"]


class BackendUnavailable(Exception):
    """The backend's store cannot be reached or did not answer in time.

    Backends raise it (or any other exception) from :meth:`Backend.take`;
    the plugin then applies its ``on_error`` policy.
    """


class Backend(ABC):
    """Where the throttle keeps one GCRA timestamp per key.

    A backend implements one method, :meth:`take`, which must run the GCRA
    step for a key atomically: two calls for the same key, from any thread,
    process or host sharing the store, must never both read the same old
    value. :func:`pyservice_throttle.gcra` holds the arithmetic, so a backend
    only provides storage and atomicity (a lock, a transaction, a script).

    Attributes:
        shared: whether every worker process (and host) sees the same
            store. A backend that is not shared is refused at start-up when
            the service runs several worker processes, unless the config sets
            ``per_process: true``.
    """

    shared: ClassVar[bool] = False

    @abstractmethod
    def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        """Run one GCRA step for ``key`` atomically and store its result.

        Args:
            key: the caller's key within its bucket (any string).
            now: the call's time, in integer microseconds.
            interval: microseconds per call at the steady rate.
            capacity: ``burst * interval``, in microseconds.

        Returns:
            What :func:`~pyservice_throttle.gcra` returns: ``(allowed, tat)``.

        Raises:
            Exception: the store failed; the plugin's ``on_error`` policy
                decides what the call gets. It must not block for long:
                bound every network call with a short timeout.
        """

    def take_within(self, key: str, now: int, interval: int, capacity: int, timeout: float) -> tuple[bool, int]:
        """:meth:`take`, for a call that must be answered within ``timeout`` seconds.

        The plugin calls it instead of :meth:`take` when the call has a
        deadline, with the time the call has left (0 once it has passed).
        A backend that talks to a store over the network overrides it to wait
        at most ``timeout`` (and at most its own timeout) for the store; the
        default calls :meth:`take`, whose own short timeouts then bound it.

        Args:
            key: as for :meth:`take`.
            now: as for :meth:`take`.
            interval: as for :meth:`take`.
            capacity: as for :meth:`take`.
            timeout: the seconds the call has left.

        Returns:
            What :meth:`take` returns.

        Raises:
            Exception: the store failed or did not answer in time; the
                plugin's ``on_error`` policy decides what the call gets.
        """
        return self.take(key, now, interval, capacity)

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing to release
        """Release what the backend holds (connections); the default does nothing."""


class MemoryBackend(Backend):
    """Timestamps in a dict of this process: fast, and per process.

    Each worker process of a server has its own, so with N workers a caller
    may get up to N times the limit. The plugin refuses it under several
    workers unless ``per_process: true`` says that is intended.

    Args:
        max_keys: the most keys kept. Past it, keys whose bucket is full again
            are dropped, then the oldest tracked keys (which only lets those
            callers through sooner).
    """

    shared = False

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self.max_keys = max_keys
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        """Run one GCRA step for ``key`` under this backend's lock."""
        tats = self._tats
        with self._lock:
            # gcra(), written out: this runs on every throttled call.
            tat = tats.get(key, now)
            if tat < now:
                tat = now
            new_tat = tat + interval
            if new_tat - now > capacity:
                return False, tat
            if len(tats) >= self.max_keys and key not in tats:
                self._make_room(now)
            tats[key] = new_tat
        return True, new_tat

    def _make_room(self, now: int) -> None:
        # A TAT in the past means a full bucket: the same as no entry at all.
        tats = self._tats
        for key in [key for key, tat in tats.items() if tat <= now]:
            del tats[key]
        # Shrink to three quarters, so the sweep runs once per many new keys.
        excess = len(tats) - self.max_keys * 3 // 4
        if excess > 0:
            for key in list(tats)[:excess]:
                del tats[key]

    def __len__(self) -> int:
        return len(self._tats)

    def __repr__(self) -> str:
        return f"<MemoryBackend {len(self._tats)} keys>"
