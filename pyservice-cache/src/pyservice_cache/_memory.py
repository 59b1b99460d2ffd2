"""The in-memory backend: a cachetools TLRU cache behind a lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import Cache, TLRUCache

from ._backend import Backend

__all__ = ["MemoryBackend"]

# What an entry costs besides its value: the key (about 120 characters), the
# tuple, and cachetools' bookkeeping. The byte bound is approximate by design.
ENTRY_OVERHEAD = 256

_Entry = tuple[bytes, float]
_count = Cache.__len__


def _expires(_key: str, entry: _Entry, now: float) -> float:
    return now + entry[1]


def _entry_size(entry: _Entry) -> int:
    return len(entry[0]) + ENTRY_OVERHEAD


class _Store(TLRUCache[str, _Entry]):
    def __init__(self, maxsize: int, timer: Callable[[], float]) -> None:
        super().__init__(maxsize, _expires, timer=timer, getsizeof=_entry_size)
        self.evictions = 0

    def popitem(self) -> tuple[str, _Entry]:
        # cachetools calls popitem only to make room, after dropping expired
        # entries, so every call here is an eviction.
        item = super().popitem()
        self.evictions += 1
        return item


class MemoryBackend(Backend):
    """Entries in this process's memory, least recently used evicted first.

    Bounded both in entries and in approximate bytes (an entry counts its
    encoded size plus a fixed overhead). Thread-safe: cachetools' caches are
    not, so every access holds one lock.

    Args:
        max_entries: the most entries kept.
        max_bytes: the approximate most bytes kept; an entry larger than
            this alone is not stored.
        timer: the clock entries expire by, in seconds; ``time.monotonic``
            by default (tests pass their own).
    """

    def __init__(
        self, max_entries: int = 10_000, max_bytes: int = 64 << 20, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries <= 0 or max_bytes <= 0:
            raise ValueError(f"max_entries and max_bytes must be positive, got {max_entries} and {max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._store = _Store(max_bytes, timer)
        self._lock = threading.Lock()

    @property
    def evictions(self) -> int:  # type: ignore[override]
        """Entries evicted to respect ``max_entries`` or ``max_bytes``."""
        return self._store.evictions

    def get(self, key: str) -> bytes | None:
        """The entry under ``key``, marking it recently used."""
        # Indexing rather than store.get(): cachetools' get() checks the key
        # (and the clock) once more before indexing; a miss raises here instead.
        try:
            with self._lock:
                entry = self._store[key]
        except KeyError:
            return None
        return entry[0]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, evicting the least recently used entries if full."""
        entry = (value, ttl)
        if _entry_size(entry) > self.max_bytes:
            return
        store = self._store
        with self._lock:
            store.expire()
            # Counted without expiring again: expire() just ran.
            if _count(store) >= self.max_entries and key not in store:
                store.popitem()
            store[key] = entry

    def delete(self, key: str) -> int:
        """Delete one entry."""
        with self._lock:
            return 0 if self._store.pop(key, None) is None else 1

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry whose key starts with ``prefix``."""
        with self._lock:
            store = self._store
            keys = [key for key in list(store.keys()) if key.startswith(prefix)]
            for key in keys:
                store.pop(key, None)
        return len(keys)

    def __len__(self) -> int:
        with self._lock:
            self._store.expire()
            return len(self._store)

    @property
    def size(self) -> int:
        """The approximate bytes held now."""
        with self._lock:
            return int(self._store.currsize)

    def __repr__(self) -> str:
        return f"<MemoryBackend max_entries={self.max_entries} max_bytes={self.max_bytes}>"

    def __reduce__(self) -> Any:
        raise TypeError("a MemoryBackend belongs to one process and cannot be pickled")
