"""Extending Service and Client by subclassing.

- ``AppService`` is the service every team of a company builds on: it adds
  the company's default hooks (a request id on every answer, a
  ``Server-Timing`` header) and a readiness check (not ready while an
  operation has no handler), once, in ``__init__``.
- ``ItemsClient`` adds a convenience method built on the generated ones.

Subclasses use the public API only: ``self.plugin(...)``,
``self.add_readiness_check(...)``, ``super().operation(...)``,
``self.call(...)``, ``self.exceptions``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyservice

API = {
    "name": "items",
    "operations": {
        "get_item": {"idempotent": True, "input": {"id": "string"}, "output": {"id": "string", "name": "string"}},
        "put_item": {"input": {"name": "string"}, "output": {"id": "string"}},
    },
    "exceptions": {"DoesNotExist": {"status": 404}},
}


class AppService(pyservice.Service):
    """A Service with the company's defaults; handlers and plugins come on top."""

    def __init__(self, **api: Any) -> None:
        self.handled: set[str] = set()
        super().__init__(**api)
        # Registered here, so they wrap every hook registered after (outermost).
        self.plugin(scope="request", name="request_id")(self._request_id)
        self.plugin(scope="request", name="server_timing")(self._server_timing)
        self.add_readiness_check("handlers", self._handlers_registered)

    @staticmethod
    def _request_id(context: pyservice.ServiceContext) -> None:
        request_id = context.headers.get("X-Request-Id") or uuid.uuid4().hex
        context.response_headers.append(("X-Request-Id", request_id))
        context.process_request()

    @staticmethod
    def _server_timing(context: pyservice.ServiceContext) -> None:
        started = time.perf_counter()
        context.process_request()
        elapsed = (time.perf_counter() - started) * 1000
        context.response_headers.append(("Server-Timing", f"app;dur={elapsed:.3f}"))

    def operation(self, name: str | None = None, *, unpack: bool = False) -> Any:
        """Register a handler, as Service.operation does, and remember which operation it serves."""
        register = super().operation(name, unpack=unpack)

        def remember(function: Any) -> Any:
            registered = register(function)
            self.handled.add(name or function.__name__)
            return registered

        return remember

    def _handlers_registered(self) -> str | None:
        missing = [name for name in self.api.operations if name not in self.handled]
        return f"no handler for {', '.join(missing)}" if missing else None


class ItemsClient(pyservice.Client):
    """A Client of the items api with a convenience method."""

    def get_or_none(self, item_id: str) -> pyservice.Container | None:
        """The item, or None when the service says it does not exist."""
        try:
            return self.call("get_item", {"id": item_id})
        except self.exceptions.DoesNotExist:
            return None


service = AppService(**API)
items: dict[str, str] = {}


@service.operation(unpack=True)
def put_item(name: str) -> dict[str, str]:
    item_id = uuid.uuid4().hex[:8]
    items[item_id] = name
    return {"id": item_id}


@service.operation()
def get_item(request: pyservice.Container, response: pyservice.Container, context: pyservice.ServiceContext) -> None:
    if request.id not in items:
        raise service.exceptions.DoesNotExist(f"no item {request.id}")
    response.id = request.id
    response.name = items[request.id]
