"""Every plugin at once, on Redis and PostgreSQL, for the load test: ``load_app:service``.

``REDIS_URL``, ``DATABASE_URL``, ``TABLE``, ``PREFIX`` and ``LOAD_KEY_SECRET`` come from the test.
"""

from __future__ import annotations

import os

import pyservice
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

REDIS_URL = os.environ["REDIS_URL"]
PREFIX = os.environ["PREFIX"]

api = {
    "name": "load",
    "operations": {
        "put_item": {},
        "get_item": {"read_only": True, "plugins": {"cache": {"scope": "public", "ttl": 30}}},
        "limited": {"plugins": {"throttle": {"limit": "50/hour", "key": "header:X-Tenant"}}},
        "count": {"read_only": True},
    },
    "exceptions": {"DoesNotExist": {"status": 404}},
    "plugins": {
        "logging": {"level": "warning"},
        "auth": {
            "mode": "signed",
            "keys": {"load": {"secret_env": "LOAD_KEY_SECRET", "principal": "load-client"}},
            "nonce_store": "redis",
            "redis_url": REDIS_URL,
            "redis_prefix": f"{PREFIX}:nonce:",
            "allow": ["authenticated"],
        },
        "throttle": {"backend": "redis", "redis_url": REDIS_URL, "prefix": f"{PREFIX}:throttle:"},
        "cache": {"backend": "redis", "redis_url": REDIS_URL, "prefix": f"{PREFIX}-cache"},
        "sqlalchemy": {"url": os.environ["DATABASE_URL"], "errors": {"not_found": "DoesNotExist"}},
    },
}
service = pyservice.Service(**api)


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = os.environ["TABLE"]
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


@service.operation()
def put_item(request, response, context):
    context.session.add(Item(id=request.id, name=request.name))
    response.id = request.id


@service.operation()
def get_item(request, response, context):
    response.name = context.session.get_one(Item, request.id).name


@service.operation()
def limited(request, response, context):
    response.ok = True


@service.operation()
def count(request, response, context):
    response.ids = list(context.session.scalars(select(Item.id)))
