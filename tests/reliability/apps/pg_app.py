"""Writes through the sqlalchemy plugin, for the fault tests: ``pg_app:service``.

``DATABASE_URL`` names the PostgreSQL database.
"""

from __future__ import annotations

import os

import pyservice
from sqlalchemy import String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

api = {
    "name": "faults-pg",
    "operations": {"write": {}, "count": {"read_only": True}},
    "plugins": {
        "sqlalchemy": {"url": os.environ["DATABASE_URL"], "pool_timeout": 2, "connect_args": {"connect_timeout": 2}}
    },
}
service = pyservice.Service(**api)


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "entries"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)


@service.operation()
def write(request, response, context):
    context.session.add(Entry(id=request.id))
    response.id = request.id


@service.operation()
def count(request, response, context):
    response.ids = sorted(context.session.scalars(text("SELECT id FROM entries")))
