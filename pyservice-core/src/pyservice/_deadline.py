"""Deadlines: the time a caller has left, sent with the call and passed on.

The client sends ``Pyservice-Timeout: <seconds>``; the service turns it into
an absolute ``time.monotonic()`` deadline on the context and, while the call
runs, in ``current_deadline``, where a Client called from the handler
finds it, caps its own timeout and sends what is left further on.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar

from ._wire import RequestRefused

__all__ = ["ENVIRON_KEY", "HEADER", "current_deadline", "format_timeout", "parse_timeout", "time_left"]

HEADER = "Pyservice-Timeout"
ENVIRON_KEY = "HTTP_PYSERVICE_TIMEOUT"

#: The deadline of the service call running in this context, if it has one.
current_deadline: ContextVar[float | None] = ContextVar("pyservice_deadline", default=None)


def time_left() -> float | None:
    """Seconds left before the deadline of the call being served, or None without one.

    Read it in code that does not have the context at hand (a database
    layer): in a handler, ``context.time_left()`` says the same.
    """
    deadline = current_deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def format_timeout(seconds: float) -> str:
    """The header's value: seconds, decimal, to the millisecond."""
    return f"{max(0.0, seconds):.3f}"


def parse_timeout(value: str) -> float:
    """Read the header's value.

    Raises:
        RequestRefused: 400 for a value that is not a finite, non-negative
            decimal number of seconds.
    """
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or not value.strip().replace(".", "", 1).isdigit():
        raise RequestRefused(
            400, "MalformedRequest", f"{HEADER} must be a decimal number of seconds, got {value[:30]!r}"
        )
    return seconds
