"""What the frozen-PostgreSQL tests need beyond ``pyservice.testing.PrivatePostgres``.

The machine's PostgreSQL is shared: tests never stop or freeze it. The
private one runs from the same binaries, in a temporary directory, on a free
port; ``pyservice.testing`` makes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyservice.pytest_plugin import unavailable
from pyservice.testing import PrivatePostgres, PrivateServerUnavailable
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool


def started_postgres() -> PrivatePostgres:
    """A started private PostgreSQL; skipped (failed in CI) without the binaries."""
    try:
        server = PrivatePostgres()
    except PrivateServerUnavailable as exc:
        unavailable("a private PostgreSQL", str(exc))
    server.start()
    return server


def sessions(server: PrivatePostgres, application_name: str) -> list[str]:
    """The states of the server sessions of ``application_name`` (``pg_stat_activity.state``)."""
    engine = create_engine(server.url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            query = text("SELECT state FROM pg_stat_activity WHERE application_name = :name")
            return list(connection.scalars(query, {"name": application_name}))
    finally:
        engine.dispose()


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
