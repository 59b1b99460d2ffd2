"""The plugin: one session per call, committed after the answer is encoded."""

from __future__ import annotations

import importlib
import logging
import queue
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pyservice import ApiError, Option, Plugin, ServiceContext
from pyservice.checks import non_negative_int, positive
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from ._deadline import Budget, bound_by_deadlines, current_budget, watchdog
from ._engine import EngineSource
from ._errors import ERROR_KINDS, EXCEPTIONS, ErrorTranslator

if TYPE_CHECKING:
    from contextvars import Token

    from pyservice import Client, Service

__all__ = ["DEFAULT_URL", "SQLAlchemy"]

logger = logging.getLogger("pyservice.sqlalchemy")

#: The database used when the config names none: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///pyservice.sqlite3"

# Names the core (or Python) gives a ServiceContext; the session must not shadow them.
_CONTEXT_NAMES = frozenset(
    {
        "service", "operation", "environ", "request", "response", "status", "response_headers",
        "response_body", "caller", "principal", "headers", "remote_addr", "body", "side", "process_request",
    }
)  # fmt: skip


def _attribute(value: str) -> str:
    if not value.isidentifier() or value.startswith("_") or value in _CONTEXT_NAMES:
        raise ValueError("expected a Python identifier that is not one of the context's own attributes")
    return value


#: libpq connect options the plugin sets on PostgreSQL engines it builds, unless ``connect_args`` sets them.
POSTGRESQL_CONNECT_ARGS: Mapping[str, int] = {
    # A new connection to a server that does not answer fails after this
    # many seconds (a call with a deadline waits at most its time left, and
    # libpq's minimum of 2 s).
    "connect_timeout": 5,
    # Pooled connections whose peer is gone (a host that died, a network
    # cut) are found while idle: probes after 10 s of silence, every 5 s, 3 of them.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    # Data sent and not acknowledged for 25 s drops the connection.
    "tcp_user_timeout": 25_000,
}


def _errors(value: Mapping[str, Any]) -> dict[str, str]:
    for kind, name in value.items():
        if kind not in ERROR_KINDS:
            raise ValueError(f"expected keys among {', '.join(ERROR_KINDS)}; {kind!r} is not one")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"expected exception names as values; {kind!r} maps to {name!r}")
    return dict(value)


def _import_target(value: Any, key: str, expected: type) -> Any:
    if isinstance(value, str):
        module_name, _, attribute = value.partition(":")
        if not module_name or not attribute:
            raise ApiError(key, f"expected 'module:attribute', got {value!r}")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ApiError(key, f"cannot import {value!r}: {exc}") from None
        value = target
    if not isinstance(value, expected):
        raise ApiError(key, f"expected a {expected.__name__}, got {type(value).__name__}")
    return value


class SQLAlchemy(Plugin):
    """One SQLAlchemy session per call, committed after the answer is encoded.

    On the service side each call gets a fresh session on
    ``context.session`` (or the ``attribute`` the config names), opened
    around the whole call. When the call succeeds, the session commits
    after the response has been encoded, so lazy loads during encoding
    still run in its transaction; when anything raises (the handler,
    another plugin, the encoder, the commit itself) it rolls back and the
    call fails. The session is closed in every case, which returns its
    connection to the pool. On the client side the plugin does nothing.

    Operations with ``"read_only": true`` run in a read-only transaction
    (PostgreSQL's ``READ ONLY``; SQLite's ``query_only``).
    """

    name: ClassVar[str] = "sqlalchemy"
    options: ClassVar[Mapping[str, Option]] = {
        "url": Option(str, None, f"Database URL; {DEFAULT_URL} when no engine is given.", secret=True),
        "engine": Option((str, Engine), None, "An Engine, or 'module:attribute' of one, instead of url."),
        "sessionmaker": Option(
            (str, sessionmaker), None, "A sessionmaker, or 'module:attribute' of one, instead of url."
        ),
        "attribute": Option(str, "session", "The context attribute that holds the session.", check=_attribute),
        "pool_size": Option(int, 5, "Connections kept open in each process.", check=non_negative_int),
        "max_overflow": Option(int, 10, "Connections opened beyond pool_size under load.", check=non_negative_int),
        "pool_timeout": Option(float, 10.0, "Seconds to wait for a free connection.", check=positive),
        "pool_pre_ping": Option(bool, True, "Test each connection as it leaves the pool."),
        "pool_recycle": Option(float, None, "Replace connections older than this many seconds.", check=positive),
        "statement_timeout": Option(
            float, None, "Seconds a statement may run (PostgreSQL), set at connect.", check=positive
        ),
        "echo": Option(bool, False, "Log every statement to the sqlalchemy.engine logger."),
        "hide_parameters": Option(bool, True, "Keep bound values out of error messages and logs."),
        "connect_args": Option(dict, {}, "Extra keyword arguments of the driver's connect()."),
        "timeout": Option(
            float,
            None,
            "Seconds a call's database work may take when its caller sent no deadline; "
            "default: the operation's client read timeout (PostgreSQL).",
            check=positive,
        ),
        "errors": Option(dict, {}, "Exception names by error kind: " + ", ".join(ERROR_KINDS) + ".", check=_errors),
    }
    operation_keys: ClassVar[Mapping[str, Option]] = {
        "read_only": Option(bool, False, "Run the operation in a read-only transaction."),
    }
    exceptions: ClassVar[Mapping[str, int]] = EXCEPTIONS

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._source: EngineSource | None = None
        self._dialect = ""
        self._ready_budget: float | None = None

    # -- set-up ----------------------------------------------------------------

    def setup(self, owner: Service | Client) -> None:
        """Register the session hook on a Service; a Client needs nothing."""
        if owner.side != "service":
            return
        config = self.config
        errors = config["errors"]
        for kind, name in errors.items():
            if name not in owner.api.exceptions:
                raise ApiError(
                    f"plugins.{self.name}.errors.{kind}",
                    f"exception {name!r} is not in the api's exceptions (whitelisted: "
                    f"{', '.join(sorted(owner.api.exceptions))})",
                )
        read_only_ops: list[str] = []
        other_ops: list[str] = []
        for name, operation in owner.api.operations.items():
            if self.operation_config(operation) is None:
                continue
            (read_only_ops if operation.extra.get("read_only") else other_ops).append(name)
        self._source = self._engine_source(bool(read_only_ops))
        if read_only_ops and self._dialect not in ("postgresql", "sqlite"):
            raise ApiError(
                f"operations.{read_only_ops[0]}.read_only",
                f"read-only transactions need PostgreSQL or SQLite, the database is {self._dialect or 'unknown'}",
            )
        attribute = config["attribute"]
        _install_session_attribute(attribute, f"plugins.{self.name}.attribute")
        # Without a deadline from the caller, a call's database work may take
        # as long as a pyservice client waits for its answer by default.
        api = owner.api
        fallbacks: dict[str, float] | None = None
        if self._dialect == "postgresql":
            fallbacks = {
                name: config["timeout"] or (operation.timeout or api.timeout).read
                for name, operation in api.operations.items()
            }
        translator = ErrorTranslator(errors)
        for operations, read_only in ((other_ops, False), (read_only_ops, True)):
            if operations:
                opener = _Opener(self._source, attribute, self._begin(read_only), fallbacks, config["pool_timeout"])
                hook = _session_hook(opener, translator, api.name)
                owner.plugin("request", operations=operations, name=self.name)(hook)
        self._ready_budget = None if api.health is None else api.health.timeout
        owner.add_readiness_check(self.name, self._ready)

    def stop(self, owner: Service | Client) -> None:
        """Close the pooled connections when the process stops (each worker, under ``pyservice serve``).

        The database sees each session end with a goodbye rather than a
        dropped socket. An engine the application gave is left open.
        """
        if owner.side == "service":
            self.dispose()

    def _ready(self) -> str | None:
        # Bounded like a call, by the probe's own timeout: a frozen database
        # frees the check's thread when the probe has answered. The reason names no URL.
        budget = None
        token = None
        if self._dialect == "postgresql" and self._ready_budget is not None:
            now = time.monotonic()
            budget = Budget(now + self._ready_budget, now)
            token = current_budget.set(budget)
        try:
            with self.sessionmaker() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready
            return f"the database does not answer ({type(exc).__name__})"
        finally:
            if budget is not None and token is not None:
                current_budget.reset(token)
                watchdog.finish(budget)
        return None

    def _engine_source(self, read_only: bool) -> EngineSource:
        config = self.config
        key = f"plugins.{self.name}"
        given_keys = [k for k in ("url", "engine", "sessionmaker") if config[k] is not None]
        if len(given_keys) > 1:
            raise ApiError(key, f"expected one of url, engine and sessionmaker, got {' and '.join(given_keys)}")
        given: Engine | sessionmaker[Session] | None = None
        url: URL | None = None
        engine: Engine | None = None
        if config["engine"] is not None:
            given = engine = _import_target(config["engine"], f"{key}.engine", Engine)
        elif config["sessionmaker"] is not None:
            factory: sessionmaker[Session] = _import_target(config["sessionmaker"], f"{key}.sessionmaker", sessionmaker)
            given = factory
            bind = factory.kw.get("bind")
            engine = bind if isinstance(bind, Engine) else None
        else:
            try:
                url = make_url(config["url"] or DEFAULT_URL)
            except ArgumentError:
                # Parsed here, not in an Option check: the core's message would quote the secret value.
                raise ApiError(
                    f"{key}.url", "expected a database URL like 'postgresql+psycopg://user@host/db'"
                ) from None
        if given is not None and config["statement_timeout"] is not None:
            raise ApiError(f"{key}.statement_timeout", "applies to engines built from url; set it on your engine")
        self._dialect = url.get_backend_name() if url is not None else engine.dialect.name if engine else ""
        options = self._engine_options(url) if url is not None else {}
        prepare: Callable[[Engine, sessionmaker[Session]], None] = _nothing
        if self._dialect == "postgresql":
            # The plugin pings for its own engines (bounded by the call's
            # deadline); an engine the application gives keeps its pool's own.
            ping = url is not None and config["pool_pre_ping"]
            cap = config["statement_timeout"]

            def prepare(engine: Engine, factory: sessionmaker[Session]) -> None:
                bound_by_deadlines(engine, factory, ping=ping, statement_cap=cap)

        elif read_only and self._dialect == "sqlite":
            prepare = _prepare_sqlite_read_only
        capacity = None
        if url is not None and self._dialect == "postgresql":
            capacity = config["pool_size"] + config["max_overflow"]
        return EngineSource(url=url, engine_options=options, given=given, prepare=prepare, capacity=capacity)

    def _engine_options(self, url: URL) -> dict[str, Any]:
        config = self.config
        key = f"plugins.{self.name}"
        connect_args = dict(config["connect_args"])
        postgresql = url.get_backend_name() == "postgresql"
        options: dict[str, Any] = {
            "echo": config["echo"],
            "hide_parameters": config["hide_parameters"],
            # On PostgreSQL the plugin pings itself, where the call's deadline can bound the ping.
            "pool_pre_ping": config["pool_pre_ping"] and not postgresql,
        }
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            # Each connection to :memory: is a database of its own, and one
            # shared connection would mix the transactions of concurrent calls.
            raise ApiError(f"{key}.url", "expected a SQLite file (sqlite:///path), got an in-memory database")
        options.update(
            pool_size=config["pool_size"],
            max_overflow=config["max_overflow"],
            pool_timeout=config["pool_timeout"],
            pool_recycle=-1 if config["pool_recycle"] is None else config["pool_recycle"],
        )
        timeout = config["statement_timeout"]
        if timeout is not None:
            if url.get_backend_name() != "postgresql":
                raise ApiError(f"{key}.statement_timeout", f"needs PostgreSQL, the url is {url.get_backend_name()}")
            # Set at connect, so calls pay no extra round trip for it.
            setting = f"-c statement_timeout={max(1, round(timeout * 1000))}"
            existing = connect_args.get("options")
            connect_args["options"] = f"{existing} {setting}" if existing else setting
        if postgresql and url.get_driver_name() in ("psycopg", "psycopg2"):
            connect_args = {**POSTGRESQL_CONNECT_ARGS, **connect_args}
        options["connect_args"] = connect_args
        return options

    def _begin(self, read_only: bool) -> Callable[[Session], None] | None:
        if not read_only:
            return None
        if self._dialect == "postgresql":
            return _begin_postgresql_read_only
        return _begin_sqlite_read_only

    # -- the application's view ------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine sessions are bound to, in this process (built on first use).

        Raises:
            RuntimeError: the plugin is not set up on a Service, or the
                given sessionmaker is not bound to a single engine.
        """
        engine = self._require_source().engine
        if engine is None:
            raise RuntimeError(f"plugin {self.name!r}: the given sessionmaker is not bound to an Engine")
        return engine

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        """The session factory, for work outside calls (start-up, scripts, tests)."""
        return self._require_source().factory

    def dispose(self) -> None:
        """Close the pooled connections of the engine the plugin built from ``url``.

        An engine or sessionmaker the application gave is the application's to dispose.
        """
        if self._source is not None:
            self._source.dispose()

    def _require_source(self) -> EngineSource:
        if self._source is None:
            raise RuntimeError(f"plugin {self.name!r} has an engine only once set up on a Service")
        return self._source


def _session_opener(name: str) -> Callable[[ServiceContext], Session]:
    """What ``context.<name>`` runs on its first read in a call: open the call's session."""

    def open_session(context: ServiceContext) -> Session:
        opener = getattr(context, "_pyservice_sqlalchemy", None)
        if type(opener) is not _Opener:
            raise AttributeError(
                f"context.{name} is open only inside the sqlalchemy plugin's hook: in the handler, "
                "operation hooks, and request hooks listed after the plugin, of operations it is on for"
            )
        opened = opener.open(context)
        context._pyservice_sqlalchemy = opened  # type: ignore[attr-defined]
        return opened.session

    return open_session


def _install_session_attribute(attribute: str, key: str) -> None:
    # Every service's calls share the context class; the opener finds each
    # call's own state on the context, so one definition serves all of them.
    try:
        ServiceContext.add_lazy_attribute(attribute, _session_opener(attribute), owner="sqlalchemy")
    except ValueError as exc:
        raise ApiError(key, str(exc)) from None


class _Opened:
    """The session a call opened, and the budget its database work runs under."""

    __slots__ = ("budget", "gate", "session", "token")

    def __init__(
        self,
        session: Session,
        budget: Budget | None = None,
        token: Token[Budget | None] | None = None,
        gate: queue.SimpleQueue[None] | None = None,
    ) -> None:
        self.session = session
        self.budget = budget
        self.token = token
        self.gate = gate

    def finish(self, context: ServiceContext) -> None:
        _close(self.session, context)
        budget = self.budget
        if budget is not None:
            if self.token is not None:
                current_budget.reset(self.token)
            if budget.watched:
                watchdog.finish(budget)
        if self.gate is not None:
            self.gate.put(None)


class _Opener:
    """Opens the session of one call, on its first read of ``context.session``."""

    __slots__ = ("attribute", "begin", "fallbacks", "pool_timeout", "source")

    def __init__(
        self,
        source: EngineSource,
        attribute: str,
        begin: Callable[[Session], None] | None,
        fallbacks: Mapping[str, float] | None,
        pool_timeout: float,
    ) -> None:
        self.source = source
        self.attribute = attribute
        self.begin = begin
        self.fallbacks = fallbacks  # None: the database is not bounded by deadlines (SQLite)
        self.pool_timeout = pool_timeout

    def open(self, context: ServiceContext) -> _Opened:
        session = self.source.factory()
        fallbacks = self.fallbacks
        if fallbacks is None:
            opened = _Opened(session)
        else:
            now = time.monotonic()
            deadline = context.deadline
            budget = Budget(now + fallbacks[context.operation] if deadline is None else deadline, now)
            gate = self.source.gate
            if gate is not None:
                try:
                    gate.get(timeout=max(0.0, min(self.pool_timeout, budget.cutoff - now)))
                except queue.Empty:
                    # The pool's own wait cannot be cut short at the deadline; this one can.
                    session.close()
                    raise PoolTimeout(
                        "no database connection was free within the call's deadline or pool_timeout"
                    ) from None
            opened = _Opened(session, budget, current_budget.set(budget), gate)
        begin = self.begin
        if begin is not None:
            try:
                begin(opened.session)
            except BaseException:
                opened.finish(context)
                raise
        return opened


def _session_hook(opener: _Opener, translator: ErrorTranslator, api_name: str) -> Callable[[ServiceContext], None]:
    # The call's state is an attribute of the context, set and read by name:
    # reading context.__dict__ instead would make Python build the dict that
    # it otherwise keeps inline, slowing every later attribute of the call.
    def sqlalchemy_session(context: Any) -> None:
        context._pyservice_sqlalchemy = opener
        committing = False
        try:
            context.process_request()
            opened = context._pyservice_sqlalchemy
            if opened is not opener:
                # The core has encoded the answer by now (context.response_body):
                # committing only here lets encoding read through the session,
                # and a failed commit still turns the answer into an error.
                committing = True
                opened.session.commit()
        except Exception as exc:
            opened = context._pyservice_sqlalchemy
            if opened is not opener:
                _rollback(opened.session, context)
            replacement = translator.translate(exc, f"{api_name}.{context.operation}", committing=committing)
            if replacement is None:
                raise
            raise replacement from exc
        except BaseException:
            opened = context._pyservice_sqlalchemy
            if opened is not opener:
                _rollback(opened.session, context)
            raise
        finally:
            opened = context._pyservice_sqlalchemy
            context._pyservice_sqlalchemy = None  # the session is not reopened after the hook
            if opened is not opener:
                opened.finish(context)

    return sqlalchemy_session


def _rollback(session: Session, context: ServiceContext) -> None:
    try:
        session.rollback()
    except Exception as exc:
        # The call already fails with the first error; this one would hide it.
        # A connection that broke is invalidated by SQLAlchemy and not reused.
        logger.warning("rollback failed in %s: %s", context.operation, type(exc).__name__)


def _close(session: Session, context: ServiceContext) -> None:
    try:
        session.close()
    except Exception as exc:
        logger.warning("closing the session failed in %s: %s", context.operation, type(exc).__name__)


def _begin_postgresql_read_only(session: Session) -> None:
    # A connection characteristic: the driver starts the transaction with
    # BEGIN READ ONLY (no extra round trip) and SQLAlchemy resets it when the
    # connection goes back to the pool.
    session.connection(execution_options={"postgresql_readonly": True})


_QUERY_ONLY = "pyservice_sqlalchemy_query_only"


def _begin_sqlite_read_only(session: Session) -> None:
    connection = session.connection()
    connection.exec_driver_sql("PRAGMA query_only = ON")
    connection.connection.info[_QUERY_ONLY] = True  # reset at check-in, see _prepare_sqlite_read_only


def _prepare_sqlite_read_only(engine: Engine, factory: sessionmaker[Session]) -> None:
    @event.listens_for(engine, "checkin")
    def reset_query_only(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None and record.info.pop(_QUERY_ONLY, False):
            dbapi_connection.execute("PRAGMA query_only = OFF")


def _nothing(engine: Engine, factory: sessionmaker[Session]) -> None:
    pass
