"""The real plugin packages, one small entry each.

Each entry says what it adds to the api description and how its calls
look (a signed request needs headers made by the client side of the same
plugin). An entry whose package is not importable, or whose documented
config the installed version refuses, is skipped with a note saying so:
the rest of the suite runs without it.

The configs follow each package's README:

- pyservice-logging: JSON lines to a handler that writes to ``os.devnull``,
  so the figure is the plugin's own work (rendering included) and not the
  terminal's; and JSON lines to ``sys.stdout`` (the plugin's own output, no
  stdlib logging), which the sections point at ``os.devnull``.
- pyservice-auth: signed requests (HMAC-SHA256), nonces in memory, any
  authenticated principal allowed; the client side of the same plugin signs
  each call before the clock starts. And API keys (HMAC-SHA256 of the
  secret with a pepper, compared with the stored hash): every call carries
  the same ``Authorization: ApiKey prefix.secret`` header.
- pyservice-throttle: the memory backend, with a limit no benchmark reaches.
- pyservice-cache: the memory backend, ``scope: public``; a hit (the same
  request every call) and a miss (a new request every call, stored each time).
- pyservice-sqlalchemy: SQLite in a temporary file; the handler does not
  query, so the figure is the session's life cycle (open, commit, close).
- pyservice-idempotency: the memory backend; a new key every call (made by the
  client side of the plugin: claim, run, store), and a replay (the same key and
  request every call).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyservice
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from .apps import build_service
from .payloads import SMALL_BODY, numbered
from .wsgi import EnvironFactory, environ_for


class Unavailable(Exception):
    """A plugin entry that cannot run here; the message says why."""


@dataclass
class Part:
    """What one plugin adds to the benchmark service."""

    name: str
    plugins: dict[str, Any]
    echo_plugins: dict[str, Any] = field(default_factory=dict)  # the echo operation's per-plugin entries
    unique_bodies: bool = False  # a new request every call (cache miss)
    client_plugins: dict[str, Any] | None = None  # the client side makes the headers (signing)
    headers: dict[str, str] = field(default_factory=dict)  # the same headers on every call (an API key)


def _need(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{package} is not importable ({exc}); pip install -e ./{package}") from None


def logging_part(stack: contextlib.ExitStack) -> Part:
    _need("pyservice_logging", "pyservice-logging")
    # The plugin's "stdlib" output hands rendered lines to our handler: one to
    # os.devnull, on a parent logger that does not propagate further.
    sink = open(os.devnull, "w")  # noqa: SIM115 - closed by the stack
    stack.callback(sink.close)
    parent = logging.getLogger("bench")
    handler = logging.StreamHandler(sink)
    parent.addHandler(handler)
    parent.propagate = False
    stack.callback(parent.removeHandler, handler)
    return Part("logging", {"logging": {"output": "stdlib", "logger_name": "bench.access", "renderer": "json"}})


def logging_stdout_part(stack: contextlib.ExitStack) -> Part:
    # The plugin's own output, as the items example uses it: each line written to
    # sys.stdout, which the sections point at os.devnull while they measure.
    _need("pyservice_logging", "pyservice-logging")
    return Part("logging", {"logging": {"output": "stdout", "renderer": "json"}})


#: A signing key shared by the benchmark's client and service (32 bytes or more, as the package requires).
AUTH_KEY_ID = "bench"
AUTH_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


def auth_part(stack: contextlib.ExitStack) -> Part:
    _need("pyservice_auth", "pyservice-auth")
    # "allow" is required: with the plugin on, an empty list denies everyone.
    service_side = {
        "auth": {
            "mode": "signed",
            "keys": {AUTH_KEY_ID: AUTH_SECRET},
            "nonce_store": "memory",
            "allow": ["authenticated"],
        }
    }
    client_side = {"auth": {"mode": "signed", "key_id": AUTH_KEY_ID, "secret": AUTH_SECRET}}
    return Part("auth", service_side, client_plugins=client_side)


#: An API key for the benchmark: the pepper (32 bytes or more), the key's prefix and secret, the stored hash.
API_KEY_PEPPER = "bench-pepper-0123456789abcdef0123456789abcdef"
API_KEY_PREFIX = "bench"
API_KEY_SECRET = "s3cr3t-0123456789abcdefghijklmnopqrstuvwxyzABCD"


def api_key_part(stack: contextlib.ExitStack) -> Part:
    auth = _need("pyservice_auth", "pyservice-auth")
    service_side = {
        "auth": {
            "mode": "api_key",
            "pepper": API_KEY_PEPPER,
            "api_keys": {
                API_KEY_PREFIX: {
                    "hash": auth.hash_api_key_secret(API_KEY_PEPPER, API_KEY_SECRET),
                    "principal": "bench-client",
                }
            },
            "allow": ["authenticated"],
        }
    }
    header = f"{auth.API_KEY_SCHEME} {API_KEY_PREFIX}.{API_KEY_SECRET}"
    return Part("auth", service_side, headers={"Authorization": header})


def throttle_part(stack: contextlib.ExitStack) -> Part:
    _need("pyservice_throttle", "pyservice-throttle")
    return Part("throttle", {"throttle": {"limit": "1000000/second", "backend": "memory"}})


def cache_part(unique: bool) -> Callable[[contextlib.ExitStack], Part]:
    def part(stack: contextlib.ExitStack) -> Part:
        _need("pyservice_cache", "pyservice-cache")
        return Part(
            "cache",
            {"cache": {"backend": "memory"}},
            echo_plugins={"cache": {"scope": "public", "ttl": 3600}},
            unique_bodies=unique,
        )

    return part


def sqlalchemy_part(stack: contextlib.ExitStack) -> Part:
    _need("pyservice_sqlalchemy", "pyservice-sqlalchemy")
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sqlalchemy-"))
    return Part("sqlalchemy", {"sqlalchemy": {"url": f"sqlite:///{folder}/bench.sqlite3"}})


def idempotency_part(stack: contextlib.ExitStack) -> Part:
    _need("pyservice_idempotency", "pyservice-idempotency")
    # The memory backend; the client side of the same plugin gives every call a new key
    # (a UUID, made before the clock starts), so each call claims, runs and stores.
    return Part(
        "idempotency",
        {"idempotency": {"backend": "memory"}},
        echo_plugins={"idempotency": {}},
        unique_bodies=True,
        client_plugins={"idempotency": {}},
    )


def idempotency_replay_part(stack: contextlib.ExitStack) -> Part:
    _need("pyservice_idempotency", "pyservice-idempotency")
    # The same key and request every call: the first stores, every later one is a replay.
    return Part(
        "idempotency",
        {"idempotency": {"backend": "memory"}},
        echo_plugins={"idempotency": {}},
        headers={"Idempotency-Key": "bench-replay"},
    )


#: One entry per case, in the order the tables list them; "all" combines them.
ENTRIES: dict[str, list[Callable[[contextlib.ExitStack], Part]]] = {
    "logging": [logging_part],
    "logging, to stdout": [logging_stdout_part],
    "auth, signed request": [auth_part],
    "auth, API key": [api_key_part],
    "throttle, memory": [throttle_part],
    "cache hit": [cache_part(unique=False)],
    "cache miss": [cache_part(unique=True)],
    "sqlalchemy, SQLite": [sqlalchemy_part],
    "idempotency, new key": [idempotency_part],
    "idempotency, replay": [idempotency_replay_part],
}
#: Outermost first, as the packages document (auth before throttle and cache).
ALL = [logging_part, auth_part, throttle_part, cache_part(unique=True), sqlalchemy_part]


class _Capture(requests.adapters.BaseAdapter):
    """A transport that keeps what the client would send and answers ``{}``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[dict[str, str], bytes]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = request.body or b""
        self.sent.append((dict(request.headers), body if isinstance(body, bytes) else body.encode()))
        response = requests.Response()
        response.status_code = 200
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", "Content-Length": "2"})
        response.raw = io.BytesIO(b"{}")
        response._content = b"{}"
        response.request = request
        return response

    def close(self) -> None:
        pass


def _signed_environs(client_plugins: dict[str, Any], make_body: Callable[[int], bytes]) -> EnvironFactory:
    """Environs whose headers the client side of the plugins made, one call each."""
    capture = _Capture()
    session = requests.Session()
    session.mount("http://", capture)
    client = pyservice.Client(session=session, name="bench", operations=["echo"], plugins=client_plugins)
    serial = iter(range(1 << 62))

    def factory(n: int) -> list[dict[str, Any]]:
        capture.sent.clear()
        for _ in range(n):
            client.call("echo", pyservice.Container.wrap(_loads(make_body(next(serial)))))
        return [environ_for(body, headers) for headers, body in capture.sent]

    return factory


def _loads(body: bytes) -> dict[str, Any]:
    import orjson

    loaded: dict[str, Any] = orjson.loads(body)
    return loaded


def build(
    parts_makers: list[Callable[[contextlib.ExitStack], Part]], stack: contextlib.ExitStack
) -> tuple[pyservice.Service, EnvironFactory]:
    """The service with these plugins on, and its environ factory.

    Raises:
        Unavailable: a package is missing, or refuses the config written here.
    """
    parts = [make(stack) for make in parts_makers]
    plugins: dict[str, Any] = {}
    echo_plugins: dict[str, Any] = {}
    client_plugins: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for part in parts:
        plugins.update(part.plugins)
        echo_plugins.update(part.echo_plugins)
        client_plugins.update(part.client_plugins or {})
        headers.update(part.headers)
    try:
        service = build_service(plugins=plugins, echo_options={"plugins": echo_plugins})
    except pyservice.ApiError as exc:
        names = ", ".join(part.name for part in parts)
        raise Unavailable(f"the installed package refuses the config this bench writes for {names}: {exc}") from None
    unique = any(part.unique_bodies for part in parts)
    make_body: Callable[[int], bytes] = numbered if unique else (lambda serial: SMALL_BODY)
    if client_plugins:
        factory = _signed_environs(client_plugins, make_body)
    else:
        serial = iter(range(1 << 62))

        def factory(n: int) -> list[dict[str, Any]]:
            return [environ_for(make_body(next(serial)), headers) for _ in range(n)]

    return service, factory
