"""Database work bounded by the call's deadline (PostgreSQL).

A call that uses the database gets a *budget*: the time it has left
(``context.time_left()``), or, when its caller sent no deadline, the
fallback timeout, less a small reserve to send the answer. Two things hold
the database work to it:

- the server: each transaction the call begins starts with
  ``SET LOCAL statement_timeout`` and ``lock_timeout`` (one round trip, only
  for calls that use a connection). A slow statement or a lock wait is
  cancelled by PostgreSQL and answered ``DatabaseTimeout``; the connection
  stays usable.
- the client: a server that does not answer at all (frozen, or a network
  that drops packets) cannot cancel anything, and the kernel of a frozen
  host still acknowledges TCP, so keepalives never fire. A watchdog thread,
  one per process, shuts down the socket of each connection a call still
  holds when its budget is over: the blocked driver call returns at once with
  a lost connection, answered ``DatabaseUnavailable``, and the connection is
  discarded, never reused. Its transaction was never committed.

The call is found through a context variable the plugin sets while the
call's session is open, so the pool's events (checkout, checkin) and the
session's (a transaction begins) know which budget applies.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

__all__ = ["Budget", "Watchdog", "bound_by_deadlines", "current_budget", "watchdog"]

logger = logging.getLogger("pyservice.sqlalchemy")

#: At most this much of a call's time (and at most a fifth of it) is kept
#: back: the server's timeouts fire that much before the deadline, so the
#: rollback and the answer still fit, and the watchdog half of it before.
RESERVE = 0.2


class Budget:
    """The time one call's database work may take.

    Args:
        deadline: the ``time.monotonic()`` time by which the caller wants its answer.
        now: ``time.monotonic()`` when the session opened.

    Attributes:
        server_deadline: when the server should give up (statement and lock timeouts).
        cutoff: when the watchdog breaks the call's connections, a little
            after the server's own timeouts would have fired and before the
            caller's deadline.
        connections: the driver connections the call holds now.
        watched: the watchdog has seen the call (it checked out a
            connection); a call that never did need not tell it it is over.
    """

    __slots__ = ("connections", "cutoff", "deadline", "server_deadline", "watched")

    def __init__(self, deadline: float, now: float) -> None:
        reserve = min(RESERVE, max(0.0, deadline - now) / 5)
        self.deadline = deadline
        self.server_deadline = deadline - reserve
        self.cutoff = deadline - reserve / 2
        self.connections: list[Any] = []
        self.watched = False

    def server_milliseconds(self, cap: float | None) -> int:
        """The statement and lock timeout for a transaction beginning now, in whole milliseconds (at least 1)."""
        left = self.server_deadline - time.monotonic()
        if cap is not None:
            left = min(left, cap)
        return max(1, math.floor(left * 1000))


#: The budget of the call whose session is open in this context.
current_budget: ContextVar[Budget | None] = ContextVar("pyservice_sqlalchemy_budget", default=None)


_LINGER = 1.0


class Watchdog:
    """Breaks the connections of calls whose budget is over; one thread, started on first use."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._budgets: set[Budget] = set()
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    def hold(self, budget: Budget, connection: Any) -> None:
        """``connection`` now serves the call of ``budget``: break it at the budget's cutoff."""
        with self._condition:
            budget.watched = True
            budget.connections.append(connection)
            self._budgets.add(budget)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pyservice-sqlalchemy-watchdog", daemon=True)
                self._thread.start()
            if budget.cutoff < self._wake_at:
                self._condition.notify()

    def release(self, budget: Budget, connection: Any) -> None:
        """``connection`` went back to the pool (or was discarded): it is no longer the call's."""
        with self._condition:
            if connection in budget.connections:
                budget.connections.remove(connection)

    def finish(self, budget: Budget) -> None:
        """The call is over: forget it, whatever connections it still names."""
        with self._condition:
            self._budgets.discard(budget)
            budget.connections.clear()

    def _run(self) -> None:
        condition = self._condition
        with condition:
            while True:
                now = time.monotonic()
                expired = [budget for budget in self._budgets if budget.cutoff <= now]
                for budget in expired:
                    self._budgets.discard(budget)
                    for connection in budget.connections:
                        _break(connection, budget)
                    budget.connections.clear()
                # Calls come and go between wakes: without budgets the thread
                # still plans to wake a second later, so that the next call,
                # whose cutoff is later than that, need not wake it (a thread
                # woken per call would cost every call a switch).
                self._wake_at = min((budget.cutoff for budget in self._budgets), default=now + _LINGER)
                condition.wait(self._wake_at - now)

    def _after_fork(self) -> None:
        # The thread does not exist in the child, and a lock held at the fork would stay held.
        self._reset()


def _break(connection: Any, budget: Budget) -> None:
    # Called under the watchdog's lock, so the call cannot hand the connection
    # back to the pool (its checkin waits for the lock) while its socket is shut.
    try:
        fd = connection.pgconn.socket  # raises once the driver has closed the connection
    except Exception:
        return
    if fd < 0:
        return
    sock = socket.socket(fileno=fd)
    try:
        # Shut, not closed: the descriptor stays the driver's. Its blocked read
        # returns at once, it reports a lost connection, and SQLAlchemy
        # discards the connection.
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()
    late = time.monotonic() - budget.deadline
    logger.warning(
        "the database did not answer within the call's deadline; connection closed (%.3fs %s the deadline)",
        abs(late),
        "after" if late > 0 else "before",
    )


_FRESH = "pyservice_sqlalchemy_fresh"


def bound_by_deadlines(
    engine: Engine, factory: sessionmaker[Session], *, ping: bool, statement_cap: float | None
) -> None:
    """Hold the work of calls on ``engine`` to their budgets (PostgreSQL).

    Args:
        engine: the engine; gets pool and connect listeners.
        factory: the calls' sessionmaker; gets an ``after_begin`` listener.
        ping: test each connection as it leaves the pool (instead of the
            pool's own ``pre_ping``, which runs before any listener could
            watch it and would hang on a frozen server).
        statement_cap: a statement timeout the configuration sets for every
            statement (seconds), which a call's own never exceeds.
    """
    dialect = engine.dialect
    begin_with = _psycopg_begin_with() if dialect.driver == "psycopg" else None

    @event.listens_for(engine, "do_connect")
    def connect_within_budget(dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        budget = current_budget.get()
        if budget is None:
            return None  # SQLAlchemy connects as usual
        return _connect_by(budget.cutoff, lambda: dialect.connect(*cargs, **cparams), dialect.loaded_dbapi)

    @event.listens_for(engine, "connect")
    def mark_fresh(dbapi_connection: Any, record: Any) -> None:
        record.info[_FRESH] = True

    @event.listens_for(engine, "checkout")
    def watch_and_ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        budget = current_budget.get()
        if budget is not None:
            watchdog.hold(budget, dbapi_connection)
        if ping and not record.info.pop(_FRESH, False):
            try:
                dialect.do_ping(dbapi_connection)
            except Exception as exc:
                if budget is not None:
                    watchdog.release(budget, dbapi_connection)
                    if time.monotonic() >= budget.cutoff:
                        raise  # no time left for another connection: the call fails now
                # The pool discards this connection and tries a fresh one.
                raise DisconnectionError(f"pre-ping failed: {type(exc).__name__}") from exc

    @event.listens_for(engine, "checkin")
    def unwatch(dbapi_connection: Any, record: Any) -> None:
        budget = current_budget.get()
        if budget is not None and dbapi_connection is not None:
            watchdog.release(budget, dbapi_connection)

    @event.listens_for(factory, "after_begin")
    def set_timeouts(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
        budget = current_budget.get()
        if budget is None:
            return
        milliseconds = budget.server_milliseconds(statement_cap)
        settings = f"SET LOCAL statement_timeout = {milliseconds}; SET LOCAL lock_timeout = {milliseconds}"
        if begin_with is None or not begin_with(connection, settings):
            # LOCAL ends with the transaction; a round trip of its own here.
            connection.exec_driver_sql(settings)


def _psycopg_begin_with() -> Callable[[Connection, str], bool]:
    """``begin_with(connection, settings)``: begin the transaction and apply ``settings`` in one round trip.

    psycopg would send its own ``BEGIN`` before the first statement, one
    round trip, and ``SET LOCAL`` would cost a second. psycopg decides
    whether to send it from libpq's transaction status, so a ``BEGIN`` sent
    here with the settings, through libpq, takes its place: the call pays
    no round trip for its timeouts. The ``BEGIN`` is the one psycopg would
    have sent (isolation level, read-only, deferrable). It answers
    ``False`` where it cannot (a transaction psycopg already began,
    autocommit), and the settings then take a round trip of their own.
    """
    import psycopg  # the postgresql extra: imported only for psycopg engines
    from psycopg import IsolationLevel, pq

    def begin_with(connection: Connection, settings: str) -> bool:
        driver: Any = connection.connection.driver_connection
        pgconn = getattr(driver, "pgconn", None)
        if pgconn is None or driver.autocommit or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False  # not psycopg 3, or a transaction the driver already began
        parts = ["BEGIN"]
        if driver.isolation_level is not None:
            parts.append("ISOLATION LEVEL " + IsolationLevel(driver.isolation_level).name.replace("_", " "))
        if driver.read_only is not None:
            parts.append("READ ONLY" if driver.read_only else "READ WRITE")
        if driver.deferrable is not None:
            parts.append("DEFERRABLE" if driver.deferrable else "NOT DEFERRABLE")
        command = f"{' '.join(parts)}; {settings}"
        try:
            result = pgconn.exec_(command.encode())
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=driver.info.encoding)
        except psycopg.Error as exc:
            # Raised as SQLAlchemy would have, had it sent the statement itself.
            failure: Any = exc
            invalidated = connection.dialect.is_disconnect(failure, driver, None)
            if invalidated:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                command, None, exc, psycopg.Error, connection_invalidated=invalidated, dialect=connection.dialect
            ) from exc
        return True

    return begin_with


def _connect_by(cutoff: float, connect: Callable[[], Any], dbapi: Any) -> Any:
    """Connect, or raise the driver's ``OperationalError`` at ``cutoff``.

    libpq's ``connect_timeout`` counts whole seconds, at least 2, and a
    socket that is still connecting cannot be shut from outside. So the
    connection is made in a thread of its own that the call waits for until
    its cutoff; one that comes too late is closed by that thread, which ends
    at the driver's own ``connect_timeout``. Only new connections pay this
    (about a thread start, against a connection's several round trips).
    """
    lock = threading.Lock()
    done = threading.Event()
    outcome: list[Any] = []  # the connection or the exception, once the attempt ends in time
    abandoned = False

    def attempt() -> None:
        try:
            result: Any = connect()
        except BaseException as exc:  # handed to the waiting call
            result = exc
        with lock:
            if not abandoned:
                outcome.append(result)
                done.set()
                return
        if not isinstance(result, BaseException):
            result.close()  # came too late: nobody waits for it any more

    threading.Thread(target=attempt, name="pyservice-sqlalchemy-connect", daemon=True).start()
    done.wait(max(0.0, cutoff - time.monotonic()))
    with lock:
        if not outcome:
            abandoned = True
            raise dbapi.OperationalError("connection timeout expired: no connection within the call's deadline")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


#: The process's watchdog.
watchdog = Watchdog()

if hasattr(os, "register_at_fork"):  # POSIX; elsewhere processes are spawned, not forked
    os.register_at_fork(after_in_child=watchdog._after_fork)
