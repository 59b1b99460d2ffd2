"""Private Redis and PostgreSQL servers for the fault tests, from ``pyservice.testing``.

The machine's own servers are shared with everything else that runs here, so
the fault tests never touch them: each starts servers of its own on free
ports, from the same binaries.
"""

from __future__ import annotations

from typing import TypeVar

from pyservice.pytest_plugin import unavailable
from pyservice.testing import PrivatePostgres, PrivateRedis, PrivateServerUnavailable

__all__ = ["PrivatePostgres", "PrivateRedis", "private"]

Server = TypeVar("Server", PrivatePostgres, PrivateRedis)


def private(kind: type[Server]) -> Server:
    """A server of ``kind``, not started; skipped (failed in CI) where its binaries are not installed."""
    try:
        return kind()
    except PrivateServerUnavailable as exc:
        unavailable(kind.__name__, str(exc))
