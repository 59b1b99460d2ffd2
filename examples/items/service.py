"""The items service of the README: ``put_item`` and ``get_item``.

Items live in SQLite, so every worker process of the server sees the same
ones. Serve it with ``pyservice serve service:service`` from this folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import pyservice

api = pyservice.load_api(Path(__file__).with_name("api.json"))
service = pyservice.Service(**api)
DATABASE = os.environ.get("ITEMS_DATABASE", os.path.join(tempfile.gettempdir(), "pyservice-items.sqlite3"))


def connect() -> sqlite3.Connection:
    connection = sqlite3.connect(DATABASE, timeout=10)
    connection.execute("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, item TEXT NOT NULL)")
    return connection


@service.plugin(scope="request")
def timing(context):
    """A request-scope hook: around the whole call, body decoding included."""
    started = time.perf_counter()
    context.process_request()
    elapsed = (time.perf_counter() - started) * 1000
    context.response_headers.append(("Server-Timing", f"call;dur={elapsed:.3f}"))


@service.plugin(scope="operation")
def database(request, response, context):
    """An operation-scope hook: one connection per call, committed on success."""
    connection = connect()
    try:
        with connection:  # commits, or rolls back on an exception
            context.db = connection
            context.process_request()
    finally:
        connection.close()


@service.operation("put_item")
def put_item(request, response, context):
    if request.item is None:
        raise service.exceptions.ItemRequired("Need an item to put")
    item_id = str(uuid.uuid4())
    context.db.execute("INSERT INTO items (id, item) VALUES (?, ?)", (item_id, json.dumps(request.item)))
    response.id = item_id


@service.operation("get_item")
def get_item(request, response, context):
    if request.id is None:
        raise service.exceptions.IDRequired("Can't get an item without an ID")
    row = context.db.execute("SELECT item FROM items WHERE id = ?", (request.id,)).fetchone()
    if row is None:
        raise service.exceptions.DoesNotExist(f"No item with id {request.id}")
    response.item = json.loads(row[0])
