"""The sqlalchemy plugin's work done directly with SQLAlchemy, the way its docs recommend.

What one call of the function :func:`build` returns does, and nothing else:

1. ``Session(engine)``: a new session on an engine made once at start-up
   (the session opens no connection until it is used);
2. ``work(session)``, when given: the call's own database work;
3. ``session.commit()``, then ``session.close()``, which returns the
   connection, if one was used, to the pool; on an exception, the session is
   closed without a commit (which rolls back).

The plugin does the same through its request hook, and also: opens the
session only when the handler first reads ``context.session``; commits after
the answer is encoded; bounds the database work by the call's deadline on
PostgreSQL (``SET LOCAL statement_timeout`` and ``lock_timeout``, and a
watchdog that breaks a connection the server does not answer on); maps
database errors onto the api's exceptions. This is the floor the issue
measures it against ("each plugin within 2x of its own library's work").

:func:`make_engine` builds the engine the way the plugin does from a
``url`` (pool size 5, overflow 10, pre-ping, ``expire_on_commit=False`` on
the plugin's sessionmaker is the same as here: nothing reads the objects
after the commit).

Use::

    engine = make_engine("sqlite:///bench.sqlite3")
    call = build(engine)
    call()                                                 # Session, commit, close
    call(lambda session: session.execute(text("SELECT 1")))  # with one query
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

__all__ = ["build", "make_engine"]

T = TypeVar("T")


def make_engine(url: str, **options: Any) -> Engine:
    """An engine with the pool settings the plugin uses by default (``options`` override them)."""
    settings: dict[str, Any] = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True, **options}
    return create_engine(url, **settings)


def build(engine: Engine) -> Callable[..., Any]:
    """A function running one call's database work in a session of its own.

    Args:
        engine: the engine, made once.

    Returns:
        ``call(work=None)``: opens ``Session(engine)``, runs ``work(session)``
        if given, commits and closes; returns what ``work`` returned. An
        exception from ``work`` or the commit closes the session (rolling
        back) and propagates.
    """

    def call(work: Callable[[Session], T] | None = None) -> T | None:
        with Session(engine, expire_on_commit=False) as session:
            result = None if work is None else work(session)
            session.commit()
        return result

    return call
