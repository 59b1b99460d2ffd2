"""The wire protocol's boundary: reading request bodies, JSON, the error shape.

docs/protocol.md is the specification; this module is its service-side half.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson

from ._container import Container, to_json_value

__all__ = [
    "JSON_HEADER",
    "STATUS_LINES",
    "RequestRefused",
    "dumps",
    "encode",
    "loads",
    "read_body",
]

# orjson was chosen over msgspec by measurement (equal speed on small objects)
# and by strictness: it refuses NaN and Infinity, bounds nesting depth at 1024
# and raises one error type for all of it, where msgspec raises RecursionError.
loads = orjson.loads
dumps = orjson.dumps


def encode(fields: Any) -> bytes:
    """Encode a request's or response's fields; Containers nested anywhere encode as their fields."""
    return dumps(fields.__dict__ if type(fields) is Container else fields, default=to_json_value)


JSONDecodeError = orjson.JSONDecodeError

JSON_HEADER = ("Content-Type", "application/json")
STATUS_LINES: dict[int, str] = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_READ_CHUNK = 64 * 1024


class RequestRefused(Exception):
    """The service refuses a request before or instead of running its handler.

    Raised inside the request chain so that plugins see it pass; answered
    with the protocol's error shape and kind ``"protocol"``.

    Attributes:
        status: the HTTP status of the answer.
        name: the error's stable name, for example ``"BodyTooLarge"``.
        message: what was wrong, for a person.
        headers: extra answer headers, for example ``Allow`` on a 405.
        extra: more members of the error object, for example the
            ``errors`` list of an ``InvalidRequest``.
    """

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.headers = headers or []
        self.extra: Mapping[str, Any] = extra or {}


def _check_content_type(value: str | None) -> None:
    if value is None:
        raise RequestRefused(415, "UnsupportedMediaType", "Content-Type must be application/json")
    media, _, params = value.partition(";")
    if media.strip().lower() != "application/json":
        raise RequestRefused(
            415, "UnsupportedMediaType", f"Content-Type must be application/json, got {media.strip()[:50]!r}"
        )
    for param in params.split(";"):
        name, _, charset = param.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestRefused(415, "UnsupportedMediaType", "the only charset accepted is utf-8")


def read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    """Read a request body, enforcing the protocol's framing rules.

    Counts the bytes actually read, so a chunked body is held to the same
    limit as one with a Content-Length.

    Args:
        environ: the WSGI environ of the request.
        limit: the largest body accepted, in bytes.

    Returns:
        The body, at most ``limit`` bytes.

    Raises:
        RequestRefused: 415 for a Content-Type other than JSON, 411 without
            a length or chunked framing, 413 over the limit, 400 for both
            framings at once, a malformed length or a body that ends early,
            408 when the server's read timeout fires.
    """
    content_type = environ.get("CONTENT_TYPE")
    if content_type != "application/json":
        _check_content_type(content_type)
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if "HTTP_TRANSFER_ENCODING" in environ:
        if length:
            raise RequestRefused(
                400, "MalformedRequest", "a request may not carry both Transfer-Encoding and Content-Length"
            )
        if environ["HTTP_TRANSFER_ENCODING"].strip().lower() != "chunked":
            raise RequestRefused(400, "MalformedRequest", "the only Transfer-Encoding accepted is chunked")
        return _read_to_end(stream, limit)
    if not length:
        raise RequestRefused(411, "LengthRequired", "a Content-Length header (or chunked framing) is required")
    # isdigit() alone admits "²", which int() refuses: ASCII digits only.
    if not (length.isascii() and length.isdigit()) or len(length) > 18:
        raise RequestRefused(400, "MalformedRequest", "Content-Length is not a whole number of bytes")
    size = int(length)
    if size > limit:
        raise RequestRefused(413, "BodyTooLarge", f"the body is limited to {limit} bytes, Content-Length says {size}")
    try:
        body: bytes = stream.read(size)
        if len(body) < size:
            body = _read_rest(stream, body, size)
    except Exception as exc:
        raise _refusal(exc) from exc
    return body


def _refusal(exc: Exception) -> RequestRefused:
    # Whatever the server's stream raises is a problem of this request's
    # framing or timing, never an internal error: servers raise their own
    # types (gunicorn's InvalidChunkSize is not an OSError).
    if isinstance(exc, RequestRefused):
        return exc
    if isinstance(exc, TimeoutError):
        return RequestRefused(408, "RequestTimeout", "the body did not arrive in time")
    return RequestRefused(400, "MalformedRequest", f"the body could not be read ({type(exc).__name__})")


def _read_rest(stream: Any, first: bytes, size: int) -> bytes:
    # Servers may return fewer bytes than asked while more are on their way.
    parts = [first]
    received = len(first)
    while received < size:
        chunk = stream.read(size - received)
        if not chunk:
            raise RequestRefused(400, "MalformedRequest", f"the body ended after {received} of {size} bytes")
        parts.append(chunk)
        received += len(chunk)
    return b"".join(parts)


def _read_to_end(stream: Any, limit: int) -> bytes:
    parts = []
    received = 0
    try:
        while True:
            chunk = stream.read(min(_READ_CHUNK, limit + 1 - received))
            if not chunk:
                break
            parts.append(chunk)
            received += len(chunk)
            if received > limit:
                raise RequestRefused(413, "BodyTooLarge", f"the body is limited to {limit} bytes")
    except Exception as exc:
        raise _refusal(exc) from exc
    return b"".join(parts)


def error_body(kind: str, name: str, message: str, **extra: Any) -> bytes:
    """Encode the protocol's error shape."""
    error = {"kind": kind, "name": name, "message": message, **extra}
    return dumps({"error": error}, default=_error_value)


def _error_value(value: Any) -> Any:
    # An exception's arguments may be anything; they must never break the answer.
    try:
        return to_json_value(value)
    except TypeError:
        return repr(value)
