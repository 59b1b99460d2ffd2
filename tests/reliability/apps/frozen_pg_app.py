"""Writes and reads through the sqlalchemy plugin, for the frozen-backend tests: ``frozen_pg_app:service``.

``DATABASE_URL`` names the PostgreSQL database; the sessions are named
``APPLICATION_NAME`` so the tests can find them in ``pg_stat_activity``.
"""

from __future__ import annotations

import os

import pyservice
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

api = {
    "name": "frozen-pg",
    "operations": {"write": {}, "read": {"read_only": True}},
    "plugins": {
        "sqlalchemy": {
            "url": os.environ["DATABASE_URL"],
            "pool_size": 2,
            "max_overflow": 1,
            "pool_timeout": 2,
            "connect_args": {"application_name": os.environ.get("APPLICATION_NAME", "frozen-pg")},
        }
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
def read(request, response, context):
    response.count = context.session.scalar(select(func.count()).select_from(Entry))
