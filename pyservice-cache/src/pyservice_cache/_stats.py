"""Counters of what the cache did."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["CacheStats"]


class CacheStats:
    """What one plugin instance's cache did since it was built.

    Read the attributes, or :meth:`snapshot` for all of them at once.
    Counters only grow; compare two snapshots for a rate.

    Attributes:
        hits: calls answered from the cache (including calls that waited
            for a concurrent call's answer).
        misses: calls that ran the handler (or, on a client, the HTTP
            exchange) because no entry was found.
        stores: entries written.
        bypasses: calls not cacheable: no caller identity for a caller-scoped
            operation, or a request that is not JSON.
        errors: backend failures (each one ran its call uncached).
        invalidations: entries deleted by invalidation.
    """

    __slots__ = ("_backend", "_lock", "bypasses", "errors", "hits", "invalidations", "misses", "stores")

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self.bypasses = 0
        self.errors = 0
        self.invalidations = 0

    @property
    def evictions(self) -> int:
        """Entries the backend evicted to respect its size bounds (0 where it cannot tell)."""
        return self._backend.evictions

    def add(self, counter: str, amount: int = 1) -> None:
        """Add to a counter, atomically."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + amount)

    def hit(self) -> None:
        """Count a hit, atomically: ``add("hits")`` without the name lookups, for the hot path."""
        with self._lock:
            self.hits += 1

    def snapshot(self) -> dict[str, int]:
        """Every counter, read together."""
        with self._lock:
            counts = {
                "hits": self.hits,
                "misses": self.misses,
                "stores": self.stores,
                "bypasses": self.bypasses,
                "errors": self.errors,
                "invalidations": self.invalidations,
            }
        counts["evictions"] = self.evictions
        return counts

    def __repr__(self) -> str:
        return "<CacheStats " + " ".join(f"{name}={value}" for name, value in self.snapshot().items()) + ">"
