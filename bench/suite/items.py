"""The items example (examples/items) with any of its plugins switched off, for the breakdown.

The section "a real service" serves the example's own ``service.py``, copied
verbatim beside the bench's copy of its ``api.json``, for the rows with every
plugin on. To show what each plugin costs, it also serves this module's
``service``: the same api and the same handlers, built from the same
environment variables as the example (``ITEMS_BACKENDS``,
``ITEMS_REDIS_URL``, ``ITEMS_REDIS_PREFIX``, ``ITEMS_DATABASE_URL``,
``ITEMS_PEPPER``, ``ITEMS_API_KEY_*``), less the plugins named in
``BENCH_ITEMS_OFF`` (comma-separated, or ``all``). ``BENCH_ITEMS_API`` names
the api.json to read (the bench's copy).

With the sqlalchemy plugin off, the handlers do the same work with
SQLAlchemy directly (a ``Session`` per call on an engine made once), so the
row shows what the plugin adds over what a user would write without it.
With auth off the caller's API key is still sent, and ignored.

``tests/test_smoke.py`` checks that, with nothing off, :func:`load_api`
gives the example's own ``load_api()``, so this module cannot drift from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyservice
from sqlalchemy import JSON, String, create_engine
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "items"
PLUGINS = ("logging", "auth", "throttle", "cache", "sqlalchemy")


class Base(DeclarativeBase):
    pass


class Item(Base):
    """The example's table, declared the same way."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def load_api(path: Path | None = None) -> dict[str, Any]:
    """The api the example's ``load_api()`` builds from ``path`` and the environment (its code, line for line)."""
    api: dict[str, Any] = pyservice.load_api(path or Path(os.environ.get("BENCH_ITEMS_API", EXAMPLE / "api.json")))
    plugins = api["plugins"]
    if os.environ.get("ITEMS_BACKENDS") == "shared":
        redis_url = os.environ.get("ITEMS_REDIS_URL", "redis://127.0.0.1:6379/0")
        prefix = os.environ.get("ITEMS_REDIS_PREFIX", "items")
        plugins["throttle"] = {"backend": "redis", "redis_url": redis_url, "prefix": f"{prefix}:throttle:"}
        # As the example: each worker keeps its copy of a cached answer for a second.
        plugins["cache"] = {"backend": "redis", "redis_url": redis_url, "prefix": f"{prefix}:cache", "local_ttl": 1}
        plugins["sqlalchemy"]["url"] = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    if "ITEMS_API_KEY_HASH" in os.environ:
        prefix = os.environ["ITEMS_API_KEY_PREFIX"]
        owner = {"hash": os.environ["ITEMS_API_KEY_HASH"], "principal": "demo-client", "roles": ["writer"]}
        plugins["auth"]["api_keys"] = {prefix: owner}
    if "ITEMS_DATABASE_URL" in os.environ:
        plugins["sqlalchemy"]["url"] = os.environ["ITEMS_DATABASE_URL"]
    return api


def without(api: dict[str, Any], off: frozenset[str]) -> dict[str, Any]:
    """``api`` with the plugins in ``off`` removed, service-wide and from each operation."""
    api = {**api, "plugins": {name: config for name, config in api["plugins"].items() if name not in off}}
    operations = {}
    for name, options in api["operations"].items():
        options = dict(options)
        if "plugins" in options:
            options["plugins"] = {k: v for k, v in options["plugins"].items() if k not in off}
        if "sqlalchemy" in off:
            options.pop("read_only", None)  # an operation option the sqlalchemy plugin adds
        operations[name] = options
    api["operations"] = operations
    return api


def parse_off(value: str) -> frozenset[str]:
    """``BENCH_ITEMS_OFF``: plugin names, comma-separated, or ``all``."""
    if value.strip() == "all":
        return frozenset(PLUGINS)
    off = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = off - set(PLUGINS)
    if unknown:
        raise SystemExit(f"BENCH_ITEMS_OFF: unknown plugins {sorted(unknown)}; known: {', '.join(PLUGINS)} or all")
    return off


def build(off: frozenset[str] = frozenset(), api_path: Path | None = None) -> pyservice.Service:
    """The items service with the plugins in ``off`` switched off, its table created."""
    api = without(load_api(api_path), off)
    service = pyservice.Service(**api)
    # With logging off there is no context.log: the handlers skip the line the example logs.
    logs = "logging" not in off
    if "sqlalchemy" in off:
        _direct_handlers(service, load_api(api_path)["plugins"]["sqlalchemy"], logs)
    else:
        _plugin_handlers(service, logs)
    return service


def _plugin_handlers(service: pyservice.Service, logs: bool) -> None:
    """The example's handlers, as it writes them."""
    from pyservice_sqlalchemy import SQLAlchemy

    database = next(plugin for plugin in service.plugins if isinstance(plugin, SQLAlchemy))
    Base.metadata.create_all(database.engine)

    @service.operation("put_item")
    def put_item(request: Any, response: Any, context: Any) -> None:
        item = request.item
        if not isinstance(item, dict) or not item.get("name"):
            raise service.exceptions.ItemRequired("Need an item with a name to put")
        row = Item(name=item["name"], details={k: v for k, v in item.items() if k != "name"})
        context.session.add(row)
        context.session.flush()
        if logs:
            context.log.info("item stored", item_id=row.id)
        response.id = row.id

    @service.operation("get_item")
    def get_item(request: Any, response: Any, context: Any) -> None:
        row = context.session.get_one(Item, request.id)
        response.item = {"name": row.name, **row.details}


def _direct_handlers(service: pyservice.Service, config: dict[str, Any], logs: bool) -> None:
    """The same handlers with SQLAlchemy used directly: a Session per call, committed after a write."""
    engine = create_engine(config["url"], pool_size=config.get("pool_size", 5), pool_pre_ping=True)
    Base.metadata.create_all(engine)

    @service.operation("put_item")
    def put_item(request: Any, response: Any, context: Any) -> None:
        item = request.item
        if not isinstance(item, dict) or not item.get("name"):
            raise service.exceptions.ItemRequired("Need an item with a name to put")
        with Session(engine) as session, session.begin():
            row = Item(name=item["name"], details={k: v for k, v in item.items() if k != "name"})
            session.add(row)
            session.flush()
            if logs:
                context.log.info("item stored", item_id=row.id)
            response.id = row.id

    @service.operation("get_item")
    def get_item(request: Any, response: Any, context: Any) -> None:
        with Session(engine) as session:
            try:
                row = session.get_one(Item, request.id)
            except NoResultFound:
                raise service.exceptions.DoesNotExist(f"No item {request.id}") from None
            response.item = {"name": row.name, **row.details}


def __getattr__(name: str) -> Any:
    # Built on first use, from the environment, so that importing the module
    # in-process (or for its helpers) builds nothing.
    if name == "service":
        built = build(parse_off(os.environ.get("BENCH_ITEMS_OFF", "")))
        globals()["service"] = built
        return built
    raise AttributeError(name)
