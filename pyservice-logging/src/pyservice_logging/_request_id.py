"""Request ids and W3C trace context: validated on the way in, passed on the way out."""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Mapping
from os import urandom
from typing import Any

__all__ = [
    "REQUEST_ID_PATTERN",
    "Trace",
    "adopt_traceparent",
    "current_request_id",
    "current_trace",
    "format_traceparent",
    "incoming_trace",
    "new_span_id",
    "outgoing_trace",
    "parse_traceparent",
    "valid_request_id",
]

#: What an incoming request id may look like: up to 128 characters a log
#: line, a header and a shell can carry without quoting or injection.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/~-]{0,127}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# The W3C header is short; anything much longer is not worth a regex run.
_TRACEPARENT_MAX = 512


class Trace:
    """Where one call sits in a request that may cross several services.

    Attributes:
        request_id: the id that follows the request across services.
        trace_id: the W3C trace id (32 lowercase hex digits).
        span_id: this call's own span id (16 lowercase hex digits).
        parent_id: the caller's span id, when the call came with one.
        flags: the W3C trace flags (2 lowercase hex digits).
    """

    __slots__ = ("flags", "parent_id", "request_id", "span_id", "trace_id")

    def __init__(self, request_id: str, trace_id: str, span_id: str, parent_id: str | None, flags: str) -> None:
        self.request_id = request_id
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.flags = flags

    def __repr__(self) -> str:
        return f"<Trace {self.request_id} {self.trace_id}-{self.span_id}>"


#: The trace of the call being served in this thread or task.
_CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("pyservice_logging_trace", default=None)


def current_trace() -> Trace | None:
    """The trace of the call being served here, or ``None`` outside one."""
    return _CURRENT.get()


def current_request_id() -> str | None:
    """The request id of the call being served here, or ``None`` outside one.

    A pyservice Client with the ``logging`` plugin sends it on by itself;
    this is for passing it to anything else (a queue message, a job).
    """
    trace = _CURRENT.get()
    return None if trace is None else trace.request_id


def valid_request_id(value: object) -> bool:
    """Tell whether ``value`` is acceptable as a request id from outside."""
    return isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value) is not None


def parse_traceparent(value: object) -> tuple[str, str, str] | None:
    """Check a W3C ``traceparent`` header.

    Follows the Trace Context recommendation: lowercase hex only, version
    ``ff`` is invalid, all-zero trace and parent ids are invalid, version
    ``00`` has exactly four fields, later versions may append more.

    Returns:
        ``(trace_id, parent_id, flags)``, or ``None`` when the header is
        not valid (the caller then starts a new trace).
    """
    if not isinstance(value, str) or len(value) > _TRACEPARENT_MAX:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, flags


def new_span_id() -> str:
    """A random, non-zero 16-hex-digit span id."""
    while True:
        span = secrets.token_hex(8)
        if span != _ZERO_SPAN:
            return span


def _new_trace_id() -> str:
    while True:
        trace = secrets.token_hex(16)
        if trace != _ZERO_TRACE:
            return trace


def format_traceparent(trace_id: str, span_id: str, flags: str) -> str:
    """The version-00 ``traceparent`` header value."""
    return f"00-{trace_id}-{span_id}-{flags}"


def incoming_trace(environ: Mapping[str, Any], request_id_key: str) -> Trace:
    """The trace of a call arriving at a service.

    Args:
        environ: the WSGI environ.
        request_id_key: the environ key of the request-id header
            (``HTTP_X_REQUEST_ID``).

    Returns:
        A trace with a new span id. The request id is the header's when it
        is well formed, else the incoming trace id, else a new one.
    """
    header = environ.get("HTTP_TRACEPARENT")
    parent = None if header is None else parse_traceparent(header)
    # One read of the system's random source for both new ids.
    random_hex = urandom(24).hex()
    span_id = random_hex[32:]
    if span_id == _ZERO_SPAN:
        span_id = new_span_id()
    if parent is None:
        trace_id, parent_id, flags = random_hex[:32], None, "00"
        if trace_id == _ZERO_TRACE:
            trace_id = _new_trace_id()
    else:
        trace_id, parent_id, flags = parent
    given = environ.get(request_id_key)
    request_id = trace_id if given is None or not valid_request_id(given) else given
    return Trace(request_id, trace_id, span_id, parent_id, flags)


def adopt_traceparent(trace: Trace, handed: str | None) -> bool:
    """Take the trace id and span id a plugin listed before this one gave the call (``context.traceparent``).

    The incoming parent is kept when it is of the same trace, so the event
    names the same span and parent as that plugin's span.

    Returns:
        Whether ``handed`` was a valid traceparent and was adopted.
    """
    parsed = None if handed is None else parse_traceparent(handed)
    if parsed is None:
        return False
    trace_id, span_id, flags = parsed
    if trace_id != trace.trace_id:
        trace.parent_id = None
    if trace.request_id == trace.trace_id:
        trace.request_id = trace_id
    trace.trace_id, trace.span_id, trace.flags = trace_id, span_id, flags
    return True


def outgoing_trace(explicit_request_id: str | None) -> Trace:
    """The trace of a call a client makes.

    Inside a served call it continues that call's trace (same request id and
    trace id, the served call's span as parent); elsewhere it starts one.
    The span id is filled per HTTP attempt.

    Args:
        explicit_request_id: a request id the caller passed in the call's
            headers; used when well formed.
    """
    current = _CURRENT.get()
    if current is None:
        trace_id = _new_trace_id()
        request_id = trace_id
        parent_id = None
        flags = "00"
    else:
        trace_id, request_id, parent_id, flags = current.trace_id, current.request_id, current.span_id, current.flags
    if explicit_request_id is not None and valid_request_id(explicit_request_id):
        request_id = explicit_request_id
    return Trace(request_id, trace_id, "", parent_id, flags)
