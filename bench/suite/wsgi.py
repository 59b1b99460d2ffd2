"""Calling a WSGI application in-process the way a server does."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from .apps import JSON, PATH, WSGIApp

_TEMPLATE: dict[str, Any] = {
    "REQUEST_METHOD": "POST",
    "SCRIPT_NAME": "",
    "PATH_INFO": PATH,
    "QUERY_STRING": "",
    "CONTENT_TYPE": JSON,
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_ACCEPT": JSON,
    "HTTP_USER_AGENT": "bench",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}

EnvironFactory = Callable[[int], list[dict[str, Any]]]


def environ_for(body: bytes, headers: dict[str, str] | None = None, path: str = PATH) -> dict[str, Any]:
    """A fresh environ of a POST of ``body`` (``headers`` as HTTP_* keys)."""
    environ = dict(_TEMPLATE)
    environ["PATH_INFO"] = path
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return environ


def same_body(body: bytes, headers: dict[str, str] | None = None, path: str = PATH) -> EnvironFactory:
    """A factory of ``n`` fresh environs, all posting ``body``."""
    return lambda n: [environ_for(body, headers, path) for _ in range(n)]


def bodies(make: Callable[[int], bytes]) -> EnvironFactory:
    """A factory of environs whose body differs from call to call (``make(serial)``)."""
    serial = iter(range(1 << 62))

    def factory(n: int) -> list[dict[str, Any]]:
        return [environ_for(make(next(serial))) for _ in range(n)]

    return factory


class Answer:
    """What ``start_response`` received, and the body, of one call."""

    status = ""
    headers: list[tuple[str, str]] = []  # noqa: RUF012 - replaced per instance
    body = b""


def _discard(data: bytes) -> None:
    """The ``write`` callable start_response returns; no app here uses it."""


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
    """The timed start_response: records nothing, as a server's costs nothing here."""
    return _discard


def run_batch(app: WSGIApp, environs: list[dict[str, Any]]) -> None:
    """Call ``app`` once per environ, consuming and closing each answer like a server."""
    for environ in environs:
        result = app(environ, start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()


def call_once(app: WSGIApp, environ: dict[str, Any]) -> Answer:
    """One call, with its status, headers and body kept for checking."""
    answer = Answer()

    def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        answer.status = status
        answer.headers = list(headers)
        return _discard

    result = app(environ, keep)
    try:
        answer.body = b"".join(_chunks(result))
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer


def _chunks(result: Any) -> Iterator[bytes]:
    yield from result


def check_answer(label: str, app: WSGIApp, environ: dict[str, Any], expected: dict[str, Any]) -> None:
    """Fail loudly unless ``app`` answers 200 with exactly ``expected``."""
    answer = call_once(app, environ)
    if not answer.status.startswith("200"):
        raise RuntimeError(f"{label}: expected 200, got {answer.status}: {answer.body[:300]!r}")
    got = orjson.loads(answer.body)
    if got != expected:
        raise RuntimeError(f"{label}: expected {expected!r}, got {got!r}")
