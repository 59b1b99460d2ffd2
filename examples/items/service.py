"""The items service of the README: ``put_item`` and ``get_item``, every plugin on.

Callers authenticate with an API key (run.py makes one, and gives the service
its hash and the client the key).

Items live in a real table through the sqlalchemy plugin. By default the
backends are embedded: SQLite, and the throttle's and cache's memory backends
(one per worker process, which api.json accepts with ``per_process``). With
``ITEMS_BACKENDS=shared`` they move to Redis and PostgreSQL, shared by every
worker and host (``ITEMS_REDIS_URL``, ``ITEMS_REDIS_PREFIX`` and
``ITEMS_DATABASE_URL`` say where).

Serve it with ``pyservice serve service:service`` from this folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyservice
from pyservice_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

HERE = Path(__file__).parent


def load_api() -> dict:
    api = pyservice.load_api(HERE / "api.json")
    plugins = api["plugins"]
    if os.environ.get("ITEMS_BACKENDS") == "shared":
        redis_url = os.environ.get("ITEMS_REDIS_URL", "redis://127.0.0.1:6379/0")
        prefix = os.environ.get("ITEMS_REDIS_PREFIX", "items")
        plugins["throttle"] = {"backend": "redis", "redis_url": redis_url, "prefix": f"{prefix}:throttle:"}
        # Items never change once put: each worker may keep its copy of a cached answer for a second.
        plugins["cache"] = {"backend": "redis", "redis_url": redis_url, "prefix": f"{prefix}:cache", "local_ttl": 1}
        plugins["sqlalchemy"]["url"] = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    # The operator's part: the service knows the API key's prefix and the hash of
    # its secret (never the secret), and reads its pepper from ITEMS_PEPPER.
    if "ITEMS_API_KEY_HASH" in os.environ:
        prefix = os.environ["ITEMS_API_KEY_PREFIX"]
        owner = {"hash": os.environ["ITEMS_API_KEY_HASH"], "principal": "demo-client", "roles": ["writer"]}
        plugins["auth"]["api_keys"] = {prefix: owner}
    if "ITEMS_DATABASE_URL" in os.environ:
        plugins["sqlalchemy"]["url"] = os.environ["ITEMS_DATABASE_URL"]
    return api


api = load_api()
service = pyservice.Service(**api)


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


# Once per deployment; a migration tool's job in production.
database = next(plugin for plugin in service.plugins if isinstance(plugin, SQLAlchemy))
Base.metadata.create_all(database.engine)


@service.plugin("request", operations=["get_item"])
def cache_status(context):
    """Tell the caller what the cache did, in the Cache-Status header (RFC 9211).

    The cache plugin notes it on the call (context.annotations["cache"]); its
    hook sits inside this one, so a hit passes back through here too.
    """
    context.process_request()
    outcome = context.annotations.get("cache")
    if outcome == "hit":
        context.response_headers.append(("Cache-Status", "pyservice-cache; hit"))
    elif outcome is not None:
        context.response_headers.append(("Cache-Status", f"pyservice-cache; fwd={outcome}"))


@service.operation("put_item")
def put_item(request, response, context):
    item = request.item
    if not isinstance(item, dict) or not item.get("name"):
        raise service.exceptions.ItemRequired("Need an item with a name to put")
    row = Item(name=item["name"], details={k: v for k, v in item.items() if k != "name"})
    context.session.add(row)
    context.session.flush()  # assigns the id; the commit comes after the answer is encoded
    context.log.info("item stored", item_id=row.id)
    response.id = row.id


@service.operation("get_item")
def get_item(request, response, context):
    # get_one raises NoResultFound, which the api maps to DoesNotExist.
    row = context.session.get_one(Item, request.id)
    response.item = {"name": row.name, **row.details}
