"""Limits as written in the api description: ``"100/second"``, ``"10/2s"``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MICROSECONDS", "Rate", "parse_rate"]

#: Time is counted in whole microseconds, so the Redis script (whose numbers
#: are doubles) and Python agree exactly: 2**53 µs is about 285 years.
MICROSECONDS = 1_000_000

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """A limit of ``count`` calls per ``period`` seconds.

    Attributes:
        count: calls allowed per period, at least 1.
        period: the period in seconds.
    """

    count: int
    period: float

    @property
    def interval(self) -> int:
        """Microseconds between two calls at the steady rate, rounded up.

        Rounding up keeps the limit on the strict side: never more than
        ``count`` calls per period, at most one microsecond slower per call.
        """
        return -(-round(self.period * MICROSECONDS) // self.count)

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


def parse_rate(text: str) -> Rate:
    """Read a limit such as ``"100/second"``, ``"1000/minute"`` or ``"10/2s"``.

    Args:
        text: ``COUNT/UNIT`` or ``COUNT/NUMBER UNIT``, where UNIT is one of
            ms, s, second(s), m, min, minute(s), h, hour(s), d, day(s).

    Returns:
        The parsed rate.

    Raises:
        ValueError: the text is not a limit; the message says what is expected.
    """
    match = _RATE.match(text.lower()) if isinstance(text, str) else None
    if match is None or match.group(3) not in _UNITS:
        raise ValueError("expected a limit like '100/second', '1000/minute' or '10/2s'")
    count = int(match.group(1))
    period = float(match.group(2) or 1) * _UNITS[match.group(3)]
    if count < 1:
        raise ValueError("expected a limit of at least 1 call")
    if period * MICROSECONDS < count:
        raise ValueError("expected at most one call per microsecond")
    return Rate(count, period)
