"""The orders service the live tests run under ``pyservice serve``; configured by environment variables."""

from __future__ import annotations

import os
import time
from typing import Any

import pyservice
import redis
from sqlalchemy import text

TABLE = os.environ["IDEMPOTENCY_TABLE"]

api = {
    "name": "orders",
    "version": "v1",
    "operations": {"create_order": {}},
    "exceptions": {"OutOfStock": {"status": 409}},
    # The idempotency plugin is listed before sqlalchemy: its hook is outside the
    # session's, so an answer is stored only after the transaction committed.
    "plugins": {
        "idempotency": {
            "backend": os.environ.get("IDEMPOTENCY_BACKEND", "redis"),
            "redis_url": os.environ.get("IDEMPOTENCY_REDIS_URL"),
            "prefix": os.environ.get("IDEMPOTENCY_PREFIX", "pyservice-idempotency"),
            "ttl": float(os.environ.get("IDEMPOTENCY_TTL", "60")),
            "timeout": 1.0,
        },
        "sqlalchemy": {"url": os.environ["IDEMPOTENCY_DATABASE_URL"], "pool_size": 2},
    },
}
service = pyservice.Service(**api)


@service.operation("create_order")
def create_order(request: Any, response: Any, context: Any) -> None:
    if request.sleep:
        time.sleep(request.sleep)
    if request.wait_for:
        # Hold the call until the test sets this Redis key (10 s at most).
        gate = redis.Redis.from_url(os.environ["IDEMPOTENCY_REDIS_URL"], socket_timeout=5)
        try:
            for _ in range(1000):
                if gate.exists(request.wait_for):
                    break
                time.sleep(0.01)
        finally:
            gate.close()
    statement = text(f"INSERT INTO {TABLE} (item, pid) VALUES (:item, :pid) RETURNING id")
    response.id = context.session.execute(statement, {"item": request.item, "pid": os.getpid()}).scalar_one()
    response.pid = os.getpid()
    if request.fail == "out_of_stock":
        raise service.exceptions.OutOfStock("no more", request.item)
