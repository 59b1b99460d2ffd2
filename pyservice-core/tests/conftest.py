from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import pyservice
import pytest

ITEMS_API: dict[str, Any] = {
    "name": "items",
    "version": "v1",
    "debug": False,
    "endpoint": {"scheme": "http", "host": "127.0.0.1", "port": 8080, "path": "/api/{version}/{operation}"},
    "operations": ["get_item", "put_item"],
    "exceptions": ["IDRequired", "DoesNotExist", "ItemRequired"],
}


class Answer:
    """What a WSGI application answered to one request."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_line = status
        self.status = int(status.split(" ", 1)[0])
        self.headers = dict(headers)
        self.header_list = headers
        self.body = body

    def json(self) -> Any:
        return pyservice._wire.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return self.json()["error"]


def wsgi_call(
    app: Callable[..., Any],
    path: str,
    body: bytes = b"{}",
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    content_length: str | None = "auto",
    headers: dict[str, str] | None = None,
    stream: Any = None,
) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": stream if stream is not None else io.BytesIO(body),
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if content_length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=status, headers=headers)

    chunks = app(environ, start_response)
    return Answer(started["status"], started["headers"], b"".join(chunks))


@pytest.fixture
def items_api() -> dict[str, Any]:
    return {**ITEMS_API, "endpoint": dict(ITEMS_API["endpoint"])}


@pytest.fixture(params=["flattened", "through hooks"])
def chain_path(request: pytest.FixtureRequest) -> Callable[[pyservice.Service], pyservice.Service]:
    """Which path a service's calls take; a test using it runs once for each.

    Operations without hooks are called by a flattened copy of the chain
    (``Service.wsgi_application``); a pass-through hook in each scope sends
    the same calls through the composed chain. Both must answer alike.
    """

    def take(service: pyservice.Service) -> pyservice.Service:
        if request.param == "through hooks":
            service.plugin(scope="request", name="pass_request")(lambda context: context.process_request())
            service.plugin(scope="operation", name="pass_operation")(
                lambda request, response, context: context.process_request()
            )
        return service

    return take


@pytest.fixture
def items_service(
    items_api: dict[str, Any], chain_path: Callable[[pyservice.Service], pyservice.Service]
) -> pyservice.Service:
    """The items service, on each path (see ``chain_path``)."""
    service = chain_path(pyservice.Service(**items_api))
    items: dict[str, Any] = {}

    @service.operation("put_item")
    def put_item(request, response, context):
        if request.item is None:
            raise service.exceptions.ItemRequired("Need an item to put")
        item_id = uuid.uuid4().hex
        items[item_id] = request.item
        response.id = item_id

    @service.operation("get_item")
    def get_item(request, response, context):
        if request.id is None:
            raise service.exceptions.IDRequired("Can't get an item without an ID")
        try:
            response.item = items[request.id]
        except KeyError:
            raise service.exceptions.DoesNotExist("No item with id " + request.id) from None

    return service


@pytest.fixture
def wsgi() -> Callable[..., Answer]:
    """Call a WSGI application in-process: ``wsgi(app, path, body, ...)``."""
    return wsgi_call
