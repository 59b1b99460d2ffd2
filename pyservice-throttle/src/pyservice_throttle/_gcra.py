"""The generic cell rate algorithm (GCRA), in integer microseconds.

One number per key, the theoretical arrival time (TAT): when the key would
be back to an empty bucket if calls kept coming at the steady rate. A call
at ``now`` is allowed when ``max(tat, now) + interval - now <= capacity``,
where ``capacity = burst * interval``; allowing it stores the new TAT.

The Redis backend runs the same arithmetic in Lua; :func:`gcra` is what the
memory backend runs and what a third-party backend reuses.
"""

from __future__ import annotations

from typing import NamedTuple

from ._rate import MICROSECONDS

__all__ = ["Decision", "decide", "gcra"]


def gcra(tat: int | None, now: int, interval: int, capacity: int) -> tuple[bool, int]:
    """One GCRA step: whether a call at ``now`` is allowed, and the TAT after it.

    Args:
        tat: the stored theoretical arrival time, or ``None`` for a key never
            seen (or expired).
        now: the call's time, in microseconds.
        interval: microseconds per call at the steady rate.
        capacity: ``burst * interval``, in microseconds.

    Returns:
        ``(allowed, tat)``: the TAT to store when allowed, else the stored
        one (never earlier than ``now``).
    """
    if tat is None or tat < now:
        tat = now
    new_tat = tat + interval
    if new_tat - now > capacity:
        return False, tat
    return True, new_tat


class Decision(NamedTuple):
    """A backend's answer for one call, with the numbers the headers carry.

    Attributes:
        allowed: whether the call goes through.
        remaining: calls that could go through right now, after this one.
        reset: seconds until the whole burst is available again, rounded up.
        retry_after: for a refused call, seconds until a call is allowed,
            rounded up and at least 1; 0 for an allowed call.
    """

    allowed: bool
    remaining: int
    reset: int
    retry_after: int


def _ceil_seconds(microseconds: int) -> int:
    return -(-microseconds // MICROSECONDS)


def decide(allowed: bool, tat: int, now: int, interval: int, capacity: int) -> Decision:
    """The :class:`Decision` for a GCRA step's result.

    Args:
        allowed: the step's verdict.
        tat: the TAT after the step.
        now: the call's time, in microseconds.
        interval: microseconds per call at the steady rate.
        capacity: ``burst * interval``, in microseconds.
    """
    ahead = tat - now if tat > now else 0
    remaining = (capacity - ahead) // interval
    if allowed:
        return Decision(True, remaining if remaining > 0 else 0, _ceil_seconds(ahead), 0)
    wait = ahead + interval - capacity
    retry_after = _ceil_seconds(wait)
    return Decision(False, 0, _ceil_seconds(ahead), retry_after if retry_after > 1 else 1)
