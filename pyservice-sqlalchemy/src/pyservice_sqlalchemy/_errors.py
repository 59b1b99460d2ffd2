"""Database errors as the exceptions a caller can act on.

Two exceptions belong to the plugin and are always whitelisted:
``DatabaseUnavailable`` (the connection was lost, could not be made, or the
pool had none to give) and ``DatabaseTimeout`` (the statement or lock
timeout fired). Both answer 503, which a pyservice Client retries for idempotent
operations. The api may name more, by kind, in ``errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pyservice.exceptions import exception_class
from sqlalchemy import exc as sa_exc

__all__ = ["ERROR_KINDS", "EXCEPTIONS", "ErrorTranslator", "classify"]

logger = logging.getLogger("pyservice.sqlalchemy")

UNAVAILABLE = "DatabaseUnavailable"
TIMEOUT = "DatabaseTimeout"
#: The plugin's own exceptions and their HTTP status.
EXCEPTIONS: Mapping[str, int] = {UNAVAILABLE: 503, TIMEOUT: 503}

#: The kinds of error the api may map onto its own exceptions, with the message the caller sees.
ERROR_KINDS: Mapping[str, str] = {
    "unique_violation": "a row with the same unique values already exists",
    "foreign_key_violation": "a referenced row does not exist, or is still referenced",
    "not_null_violation": "a required value is missing",
    "check_violation": "a value breaks a check constraint",
    "not_found": "no row matches",
}

# SQLSTATE codes (PostgreSQL, and the SQL standard) of the kinds above.
_SQLSTATE_KINDS = {
    "23505": "unique_violation",
    "23503": "foreign_key_violation",
    "23502": "not_null_violation",
    "23514": "check_violation",
}
# SQLSTATE classes and codes that mean the server cannot serve us now:
# connection exceptions, too many connections, shutdown and recovery.
_UNAVAILABLE_PREFIXES = ("08", "53", "57P")
# query_canceled (the statement timeout) and lock_not_available (the lock timeout).
_TIMEOUTS = ("57014", "55P03")
# SQLite's extended result codes (Python 3.11+ exposes them by name).
_SQLITE_KINDS = {
    "SQLITE_CONSTRAINT_UNIQUE": "unique_violation",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "unique_violation",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "foreign_key_violation",
    "SQLITE_CONSTRAINT_NOTNULL": "not_null_violation",
    "SQLITE_CONSTRAINT_CHECK": "check_violation",
}
_SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")
# Older Pythons give only the message.
_SQLITE_MESSAGES = (
    ("UNIQUE constraint failed", "unique_violation"),
    ("FOREIGN KEY constraint failed", "foreign_key_violation"),
    ("NOT NULL constraint failed", "not_null_violation"),
    ("CHECK constraint failed", "check_violation"),
    ("database is locked", "unavailable"),
    ("database table is locked", "unavailable"),
    ("unable to open database file", "unavailable"),
)


def classify(exc: BaseException) -> str | None:
    """Tell what kind of database error ``exc`` is.

    Returns:
        ``"unavailable"``, ``"timeout"``, one of :data:`ERROR_KINDS`, or
        ``None`` for anything else (a bug, answered as an internal error).
    """
    if isinstance(exc, sa_exc.NoResultFound):
        return "not_found"
    if isinstance(exc, sa_exc.TimeoutError):
        return "unavailable"  # the pool had no connection to give in time
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    if exc.connection_invalidated:
        return "unavailable"
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate in _SQLSTATE_KINDS:
            return _SQLSTATE_KINDS[sqlstate]
        if sqlstate in _TIMEOUTS:
            return "timeout"
        if sqlstate.startswith(_UNAVAILABLE_PREFIXES):
            return "unavailable"
        return None
    errorname = getattr(orig, "sqlite_errorname", None)
    if isinstance(errorname, str):
        if errorname in _SQLITE_KINDS:
            return _SQLITE_KINDS[errorname]
        return "unavailable" if errorname.startswith(_SQLITE_UNAVAILABLE) else None
    message = str(orig)
    for text, kind in _SQLITE_MESSAGES:
        if text in message:
            return kind
    if isinstance(exc, sa_exc.OperationalError) and type(orig).__module__.startswith(("psycopg", "pg8000")):
        # A driver error without a SQLSTATE never reached the server: the
        # connection could not be made or broke on the way.
        return "unavailable"
    return None


def _constraint(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


class ErrorTranslator:
    """Turns database errors into whitelisted exceptions.

    Args:
        names: exception names by kind (keys of :data:`ERROR_KINDS`); kinds
            left out stay internal errors.
    """

    __slots__ = ("_classes",)

    def __init__(self, names: Mapping[str, str]) -> None:
        self._classes = {kind: exception_class(name) for kind, name in names.items()}
        self._classes["unavailable"] = exception_class(UNAVAILABLE)
        self._classes["timeout"] = exception_class(TIMEOUT)

    def translate(self, exc: BaseException, where: str, *, committing: bool) -> BaseException | None:
        """The exception to raise instead of ``exc``, or ``None`` to let it through.

        Args:
            exc: what the call raised.
            where: ``"api.operation"``, for the log.
            committing: ``exc`` came from the commit, whose outcome may
                then be unknown.
        """
        kind = classify(exc)
        if kind is None:
            return None
        cls = self._classes.get(kind)
        if cls is None:
            return None
        if kind == "unavailable":
            # Whitelisted exceptions are not logged by the core; an outage is worth a line.
            logger.warning("database unavailable in %s: %s", where, _first_line(exc))
            if committing:
                return cls("the database connection failed during commit; the outcome is unknown")
            return cls("the database is unavailable")
        if kind == "timeout":
            logger.warning("statement or lock timeout in %s", where)
            return cls("the database did not answer within the statement or lock timeout")
        message = ERROR_KINDS[kind]
        constraint = _constraint(exc)
        return cls(f"{message} ({constraint})" if constraint else message)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return f"{type(orig if orig is not None else exc).__name__}: {text.splitlines()[0] if text else ''}"
