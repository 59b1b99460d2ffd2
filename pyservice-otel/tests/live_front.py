"""A service whose operation calls the other one (live_back) with a Client."""

from __future__ import annotations

import os

import pyservice
from live_apps import OTEL

BACK_API = {
    "name": "back",
    "operations": ["lookup"],
    "endpoint": {"host": "127.0.0.1", "port": int(os.environ.get("BACK_PORT", "0") or 0)},
    "plugins": {"otel": OTEL},
}

front = pyservice.Service(name="front", operations=["get"], plugins={"otel": {**OTEL, "prometheus_path": "/metrics"}})
_back_client: pyservice.Client | None = None


@front.operation("get")
def get(request, response, context):
    global _back_client
    if _back_client is None:
        _back_client = pyservice.Client(**BACK_API)
    response.value = _back_client.lookup(key=request.key).value
