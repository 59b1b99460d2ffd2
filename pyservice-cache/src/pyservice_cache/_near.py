"""A near cache: each process keeps, for a short while, what it read from a shared backend."""

from __future__ import annotations

import time
from collections.abc import Callable

from ._backend import Backend
from ._memory import MemoryBackend

__all__ = ["NearBackend"]


class NearBackend(Backend):
    """A shared backend, with a copy in this process of each entry it read or stored, kept ``ttl`` seconds.

    A hit on a hot key then costs a dictionary lookup instead of a round
    trip to Redis (measured on the items example: docs/performance.md).
    The price is staleness, bounded by ``ttl``: an entry another process
    deletes (``invalidate``) or stores anew, or that expires in the shared
    store, may still be served here for up to ``ttl`` seconds. Deleting
    through this process removes its own copy at once. Locks, and what a
    miss computes, go to the shared backend as without it.

    Args:
        shared: the backend every process shares.
        ttl: the longest a copy is served, in seconds.
        max_entries: the most copies kept (least recently used evicted).
        max_bytes: the approximate most bytes of copies kept.
        timer: the clock copies expire by.
    """

    def __init__(
        self,
        shared: Backend,
        ttl: float,
        max_entries: int = 10_000,
        max_bytes: int = 64 << 20,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.shared = shared
        self.ttl = ttl
        self.timeout = shared.timeout
        self.near = MemoryBackend(max_entries, max_bytes, timer=timer)

    @property
    def evictions(self) -> int:  # type: ignore[override]
        """The shared backend's evictions (the copies' are not counted)."""
        return self.shared.evictions

    def get(self, key: str) -> bytes | None:
        """This process's copy of ``key``'s entry, or the shared one (then copied)."""
        value = self.near.get(key)
        if value is None:
            value = self.shared.get(key)
            if value is not None:
                self.near.set(key, value, self.ttl)
        return value

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store in the shared backend, and keep a copy here."""
        self.shared.set(key, value, ttl)
        self.near.set(key, value, min(ttl, self.ttl))

    def delete(self, key: str) -> int:
        """Delete this process's copy and the shared entry."""
        self.near.delete(key)
        return self.shared.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete this process's copies under ``prefix`` and the shared entries."""
        self.near.delete_prefix(prefix)
        return self.shared.delete_prefix(prefix)

    def acquire(self, key: str, ttl: float) -> str | None:
        """The shared backend's lock."""
        return self.shared.acquire(key, ttl)

    def release(self, key: str, token: str) -> None:
        """Release the shared backend's lock."""
        self.shared.release(key, token)

    def wait(self, key: str, timeout: float) -> bytes | None:
        """Wait on the shared backend for another process's entry."""
        return self.shared.wait(key, timeout)

    def close(self) -> None:
        """Close the shared backend's connections."""
        self.shared.close()

    def __repr__(self) -> str:
        return f"<NearBackend {self.ttl:g}s in front of {self.shared!r}>"
