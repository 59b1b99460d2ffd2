"""``context.cache``: invalidation and statistics from inside a call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._plugin import Cache
    from ._stats import CacheStats

__all__ = ["CURRENT_CALLER", "CallCache"]


class _CurrentCaller:
    def __repr__(self) -> str:
        return "CURRENT_CALLER"


#: The default ``caller`` of :meth:`CallCache.invalidate`: the current call's.
CURRENT_CALLER: Any = _CurrentCaller()


class CallCache:
    """The cache as a handler sees it, as ``context.cache``.

    Args:
        cache: the plugin.
        context: the current call's context.
    """

    __slots__ = ("_cache", "_context")

    def __init__(self, cache: Cache, context: Any) -> None:
        self._cache = cache
        self._context = context

    def invalidate(
        self, operation: str, request: Mapping[str, Any] | None = None, *, caller: Any = CURRENT_CALLER
    ) -> int:
        """Delete cached answers of ``operation``.

        ``context.cache.invalidate("get_item", {"id": item_id})`` deletes the
        answer to that request; without a request, every answer of the
        operation goes.

        Args:
            operation: a cached operation of this side's api.
            request: the request whose answer to delete (all when omitted).
            caller: for a caller-scoped operation, whose answer: the current
                call's caller by default; on a service another caller's
                ``pyservice.Caller`` (see :meth:`Cache.key_for`).

        Returns:
            How many entries were deleted; 0 when the backend is unavailable
            (a warning is logged).

        Raises:
            ValueError: ``operation`` is not cached by this plugin.
            TypeError: on a service, ``caller`` is a bare string.
        """
        if request is not None and caller is CURRENT_CALLER:
            caller = self._cache.caller_of(operation, self._context)
        return self._cache.invalidate(operation, request, caller=caller)

    def invalidate_all(self) -> int:
        """Delete every cached answer of this side of this api; returns how many."""
        return self._cache.invalidate_all()

    @property
    def stats(self) -> CacheStats:
        """The plugin's counters."""
        return self._cache.stats

    def __repr__(self) -> str:
        return f"<CallCache of {self._cache!r}>"
