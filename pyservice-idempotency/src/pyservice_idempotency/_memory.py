"""The memory backend: records in this process, bounded in count and bytes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ._backend import Backend

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """Records in a dict of this process: for a service served by one process.

    Records expire after their ``ttl``. Beyond ``max_entries`` records or
    ``max_bytes`` of them, the oldest are dropped before their time and
    counted in :attr:`evictions`: a duplicate of a dropped call would run
    again, so size the bounds for a ``ttl``'s worth of calls. Each worker
    process has its own records, so the plugin refuses this backend for a
    service served by several processes.

    Args:
        max_entries: the most records kept.
        max_bytes: the most bytes of records kept (keys and values).
        clock: seconds, monotonic (tests pass their own).

    Attributes:
        evictions: records dropped before they expired.
    """

    shared = False

    def __init__(
        self, max_entries: int = 100_000, max_bytes: int = 64 << 20, *, clock: Callable[[], float] | None = None
    ) -> None:
        if max_entries <= 0 or max_bytes <= 0:
            raise ValueError(f"max_entries and max_bytes must be positive, got {max_entries} and {max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.evictions = 0
        self._clock = clock or time.monotonic
        # Insertion order is expiry order for records of one ttl: the front expires first.
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> bytes | None:
        found = self._records.get(key)
        if found is None:
            return None
        if found[0] <= now:
            self._drop(key)
            return None
        return found[1]

    def _drop(self, key: str) -> None:
        _, value = self._records.pop(key)
        self._bytes -= len(key) + len(value)

    def _put(self, key: str, value: bytes, expires: float, now: float) -> None:
        records = self._records
        old = records.get(key)
        if old is None:
            self._bytes += len(key) + len(value)
        else:
            # Replaced where it stands: a completed call keeps its claim's place in the order.
            self._bytes += len(value) - len(old[1])
        records[key] = (expires, value)
        while records and (len(records) > self.max_entries or self._bytes > self.max_bytes):
            oldest, (when, _) = next(iter(records.items()))
            if oldest == key and len(records) == 1:
                break  # one record over max_bytes on its own: kept, it is bounded by max_answer_size
            self._drop(oldest)
            if when > now:
                self.evictions += 1
        # Expired records at the front go now, so the dict does not hold a ttl's worth of dead ones.
        while records:
            oldest, (when, _) = next(iter(records.items()))
            if when > now:
                break
            self._drop(oldest)

    def claim(self, key: str, record: bytes, ttl: float, deadline: float) -> bytes | None:
        """Store ``record`` under ``key`` if free; else return what is stored."""
        now = self._clock()
        with self._lock:
            existing = self._live(key, now)
            if existing is not None:
                return existing
            self._put(key, record, now + ttl, now)
        return None

    def complete(self, key: str, claim: bytes, record: bytes, ttl: float, deadline: float) -> bool:
        """Replace ``claim`` by ``record`` if ``claim`` is still stored."""
        now = self._clock()
        with self._lock:
            if self._live(key, now) != claim:
                return False
            self._put(key, record, now + ttl, now)
        return True

    def release(self, key: str, claim: bytes, deadline: float) -> None:
        """Delete the key if ``claim`` is still stored."""
        now = self._clock()
        with self._lock:
            if self._live(key, now) == claim:
                self._drop(key)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"<MemoryBackend {len(self._records)} records, {self._bytes} bytes>"
