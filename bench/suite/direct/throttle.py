"""The throttle plugin's work done directly: GCRA on a dict, the fast way.

What one call of the function :func:`build` returns does, and nothing else:

1. reads ``time.monotonic()`` and turns it into integer microseconds (the
   plugin counts in whole microseconds, so Python and its Redis script agree);
2. under a ``threading.Lock`` (a threaded server calls it from several
   threads, and the read and the write of one key must not interleave), one
   GCRA step on a plain dict of theoretical arrival times: ``dict.get``,
   three integer operations, and the store when the call passes;
3. the four ``RateLimit-*`` header pairs of the answer (``Remaining`` and
   ``Reset`` formatted per call, ``Limit`` and ``Policy`` made once), plus
   ``Retry-After`` on a refusal.

:func:`build_decision` is steps 1 and 2 alone, the figure the issue quotes
("GCRA on a dict"). The plugin's memory backend does the same work through its
hook, its :class:`~pyservice_throttle.Backend` interface and its failure
policy, and keys the budget on ``service/bucket/caller``; the caller here
passes the key it wants.

Use::

    throttle = build(count=1_000_000, period=1.0)
    allowed, headers = throttle("c:127.0.0.1")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["build", "build_decision"]

Headers = list[tuple[str, str]]


def _interval(count: int, period: float) -> int:
    # The plugin's Rate.interval: microseconds per call, rounded up.
    return -(-round(period * 1_000_000) // count)


def build_decision(count: int, period: float = 1.0, burst: int | None = None) -> Callable[[str], bool]:
    """A function answering whether a call keyed ``key`` passes a ``count``/``period`` limit.

    Args:
        count: calls allowed per period.
        period: the period in seconds.
        burst: calls that may arrive back to back; the count by default.

    Returns:
        ``allow(key)``: one GCRA step for ``key`` now; ``True`` when the call passes.
    """
    interval = _interval(count, period)
    capacity = (burst or count) * interval
    tats: dict[str, int] = {}
    lock = threading.Lock()
    monotonic = time.monotonic

    def allow(key: str) -> bool:
        now = int(monotonic() * 1_000_000)
        with lock:
            tat = tats.get(key, now)
            if tat < now:
                tat = now
            if tat + interval - now > capacity:
                return False
            tats[key] = tat + interval
        return True

    return allow


def build(count: int, period: float = 1.0, burst: int | None = None) -> Callable[[str], tuple[bool, Headers]]:
    """A function deciding a call keyed ``key`` and making its rate-limit headers.

    Args:
        count: calls allowed per period.
        period: the period in seconds.
        burst: calls that may arrive back to back; the count by default.

    Returns:
        ``throttle(key)``: ``(allowed, headers)``, the headers the plugin adds
        to the answer for the same decision (``Retry-After`` on a refusal).
    """
    burst = burst or count
    interval = _interval(count, period)
    capacity = burst * interval
    tats: dict[str, int] = {}
    lock = threading.Lock()
    monotonic = time.monotonic
    limit = ("RateLimit-Limit", str(burst))
    policy = ("RateLimit-Policy", f"{count};w={period:g};burst={burst}")

    def throttle(key: str) -> tuple[bool, Headers]:
        now = int(monotonic() * 1_000_000)
        with lock:
            tat = tats.get(key, now)
            if tat < now:
                tat = now
            new_tat = tat + interval
            allowed = new_tat - now <= capacity
            if allowed:
                tats[key] = tat = new_tat
        ahead = tat - now
        reset = ("RateLimit-Reset", str(-(-ahead // 1_000_000)))
        if allowed:
            return True, [limit, ("RateLimit-Remaining", str((capacity - ahead) // interval)), reset, policy]
        retry_after = max(1, -(-(ahead + interval - capacity) // 1_000_000))
        return False, [limit, ("RateLimit-Remaining", "0"), reset, policy, ("Retry-After", str(retry_after))]

    return throttle
