"""The service the tests call: items, parents with children, and probes.

Built by ``make_app(url, prefix)`` in-process, and imported by
``live_app.py`` under ``pyservice serve``. Table names carry ``prefix`` so
tests that share the machine's PostgreSQL never see each other's rows.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import pyservice
from pyservice_sqlalchemy import SQLAlchemy, to_dict
from sqlalchemy import ForeignKey, String, event, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

EXCEPTIONS = {
    "Refused": {"status": 400},
    "DoesNotExist": {"status": 404},
    "AlreadyExists": {"status": 409},
    "Conflict": {"status": 409},
}
OPERATIONS: dict[str, Any] = {
    "put_item": {},
    "put_raw": {},
    "get_item": {},
    "count_items": {"read_only": True},
    "write_in_read_only": {"read_only": True},
    "read_only_setting": {"read_only": True},
    "read_write_setting": {},
    "put_child": {},
    "get_parent": {},
    "sleep": {},
    "whoami": {},
    "timeouts": {},
    "isolation": {},
    "nothing": {"read_only": True},
}


@dataclass
class Models:
    base: type[DeclarativeBase]
    Item: Any
    Zone: Any
    Parent: Any
    Child: Any


def make_models(prefix: str) -> Models:
    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = f"{prefix}_item"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100), unique=True)
        worker: Mapped[int | None]

    class Zone(Base):
        __tablename__ = f"{prefix}_zone"
        id: Mapped[int] = mapped_column(primary_key=True)
        offset_minutes: Mapped[int]

    class Parent(Base):
        __tablename__ = f"{prefix}_parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100))
        zone_id: Mapped[int | None] = mapped_column(ForeignKey(Zone.id))
        zone: Mapped[Zone | None] = relationship(lazy="select")
        children: Mapped[list[Child]] = relationship(lazy="select", order_by="Child.id")

    class Child(Base):
        __tablename__ = f"{prefix}_child"
        id: Mapped[int] = mapped_column(primary_key=True)
        # Checked at commit, so a bad child fails the commit, not the insert.
        parent_id: Mapped[int] = mapped_column(
            ForeignKey(Parent.id, deferrable=True, initially="DEFERRED"),
        )
        name: Mapped[str] = mapped_column(String(100))

    return Models(Base, Item, Zone, Parent, Child)


class ParentZone(datetime.tzinfo):
    """A time zone read from the database when a datetime is encoded.

    orjson asks a custom tzinfo for its offset while it encodes, so a
    response holding such a datetime lazy-loads ``parent.zone`` during
    encoding: the data comes from the ORM after the handler returned.
    """

    def __init__(self, parent: Any) -> None:
        self.parent = parent

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(minutes=self.parent.zone.offset_minutes)

    def dst(self, dt: datetime.datetime | None) -> datetime.timedelta:
        return datetime.timedelta(0)

    def tzname(self, dt: datetime.datetime | None) -> str:
        return "parent"


def make_app(
    url: str | None, prefix: str, *, operations: dict[str, Any] | None = None, **plugin_config: Any
) -> tuple[pyservice.Service, Models, dict[str, Any]]:
    """The service, its models and its api description."""
    models = make_models(prefix)
    config = dict(plugin_config)
    if url is not None:
        config["url"] = url
    config.setdefault("errors", {"unique_violation": "AlreadyExists", "not_found": "DoesNotExist"})
    api: dict[str, Any] = {
        "name": "sa",
        "operations": operations if operations is not None else OPERATIONS,
        "exceptions": EXCEPTIONS,
        "plugins": {"sqlalchemy": config},
    }
    service = pyservice.Service(available_plugins=[SQLAlchemy], **api)
    plugin = service.plugins[0]
    if url is not None and url.startswith("sqlite"):
        # SQLite checks foreign keys only when asked, on each connection.
        event.listen(
            plugin.engine,
            "connect",
            lambda dbapi_connection, record: dbapi_connection.execute("PRAGMA foreign_keys = ON"),
        )
    Item, Parent, Child = models.Item, models.Parent, models.Child
    item_table = Item.__tablename__

    @service.operation("put_item")
    def put_item(request, response, context):
        item = Item(name=request.name, worker=os.getpid())
        context.session.add(item)
        context.session.flush()
        response.id = item.id
        if request.fail == "whitelisted":
            raise service.exceptions.Refused(f"refused {request.name}")
        if request.fail == "internal":
            raise RuntimeError("the handler broke")
        if request.fail == "encode":
            response.unencodable = {1, 2}  # a set: orjson cannot encode it

    @service.operation("put_raw")
    def put_raw(request, response, context):
        context.session.execute(text(f"INSERT INTO {item_table} (name) VALUES (:name)"), {"name": request.name})

    @service.operation("get_item")
    def get_item(request, response, context):
        response.item = to_dict(context.session.get_one(Item, request.id))

    @service.operation("count_items")
    def count_items(request, response, context):
        response.count = context.session.scalar(select(func.count()).select_from(Item))

    @service.operation("write_in_read_only")
    def write_in_read_only(request, response, context):
        context.session.execute(text(f"INSERT INTO {item_table} (name) VALUES (:name)"), {"name": request.name})

    def transaction_read_only(session):
        if session.get_bind().dialect.name == "postgresql":
            return session.scalar(text("SHOW transaction_read_only")) == "on"
        return session.scalar(text("PRAGMA query_only")) == 1

    @service.operation("read_only_setting")
    def read_only_setting(request, response, context):
        response.read_only = transaction_read_only(context.session)

    @service.operation("read_write_setting")
    def read_write_setting(request, response, context):
        response.read_only = transaction_read_only(context.session)

    @service.operation("put_child")
    def put_child(request, response, context):
        child = Child(parent_id=request.parent_id, name=request.name)
        context.session.add(child)
        context.session.flush()
        response.id = child.id

    @service.operation("get_parent")
    def get_parent(request, response, context):
        parent = context.session.get_one(Parent, request.id)
        context.session.info["context"] = context
        response.name = parent.name
        response.at = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=ParentZone(parent))
        context.handler_returned = True

    @service.operation("sleep")
    def sleep(request, response, context):
        context.session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": request.seconds})

    @service.operation("whoami")
    def whoami(request, response, context):
        response.pid = os.getpid()
        if context.session.get_bind().dialect.name == "postgresql":
            response.backend = context.session.scalar(text("SELECT pg_backend_pid()"))

    @service.operation("timeouts")
    def timeouts(request, response, context):
        show = "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
        response.statement_timeout, response.lock_timeout = context.session.execute(text(show)).one()

    @service.operation("isolation")
    def isolation(request, response, context):
        response.isolation = context.session.scalar(text("SHOW transaction_isolation"))

    @service.operation("nothing")
    def nothing(request, response, context):
        response.done = True  # never reads context.session

    return service, models, api
