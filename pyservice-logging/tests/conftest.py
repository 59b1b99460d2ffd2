from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pyservice
import pytest
import structlog
from pyservice.testing import client_for
from pyservice_logging import LoggingPlugin, RedactPlugin

PLUGINS = (LoggingPlugin, RedactPlugin)


def make_api(plugins: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": "items",
        "version": "v1",
        "operations": {"get_item": {"idempotent": True}, "put_item": {}, "login": {}},
        "exceptions": {"DoesNotExist": {"status": 404}},
        "plugins": {"logging": {}} if plugins is None else plugins,
        **extra,
    }


def make_service(api: dict[str, Any]) -> pyservice.Service:
    service = pyservice.Service(available_plugins=PLUGINS, **api)

    @service.operation("get_item")
    def get_item(request, response, context):
        context.log.info("looking up", item_id=request.id)
        if request.id == "missing":
            raise service.exceptions.DoesNotExist("no such item")
        if request.id == "boom":
            raise ZeroDivisionError("boom")
        response.item = {"id": request.id, "name": "teapot"}

    @service.operation("put_item")
    def put_item(request, response, context):
        response.id = "1"
        response.echo = request.item

    @service.operation("login")
    def login(request, response, context):
        response.user = {"name": request.user, "password_hash": "HASHED", "profile": {"api_token": "TOK"}}
        response.session_secret = "S3CR3T"

    return service


def client(service: pyservice.Service, api: dict[str, Any] | None = None) -> pyservice.Client:
    return client_for(service, api, available_plugins=PLUGINS)


class Lines:
    """The JSON lines the plugin wrote to stderr during a test."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.read().splitlines() if line.startswith("{")]

    def calls(self, side: str) -> list[dict[str, Any]]:
        return [event for event in self.events() if event.get("event") == "call" and event.get("side") == side]


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Lines:
    return Lines(capsys)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that configure the stdlib or structlog leave the process as they found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    gunicorn = {name: list(logging.getLogger(name).filters) for name in ("gunicorn.error", "gunicorn.access")}
    structlog_config = structlog.get_config()
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, filters in gunicorn.items():
        logging.getLogger(name).filters[:] = filters
    structlog.configure(**structlog_config)


def wsgi_post(
    app: Callable[..., Any], path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "REMOTE_ADDR": "10.0.0.7",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=status, headers=response_headers)

    body_out = b"".join(app(environ, start_response))
    return int(started["status"].split()[0]), dict(started["headers"]), body_out
