"""The logging plugin's work done directly with structlog, the way its docs recommend for speed.

What one call of the function :func:`build` returns does, and nothing else:

1. ``log.info("call", **fields)`` on a ``FilteringBoundLogger`` (from
   ``structlog.make_filtering_bound_logger(INFO)``) bound once at start-up to
   ``logger="pyservice.access"`` and kept: no lookup, no proxy, no stdlib
   ``logging`` on the way;
2. the processors ``add_log_level``, ``TimeStamper(fmt="iso", utc=True)``, a
   key-set redaction step (each key looked up in a frozen set of secret key
   names; a match's value becomes ``"[REDACTED]"``), and
   ``JSONRenderer(serializer=orjson.dumps)``, which renders bytes;
3. the line written to ``sink`` by the ``BytesLogger`` that
   ``BytesLoggerFactory`` makes (write, then flush, under its lock).

The plugin's call event does more for the same line (request ids and trace
context, contextvars for the handler's loggers, glob patterns over normalised
key names, card numbers in values); this is the floor the issue measures it
against ("each plugin within 2x of its own library's work").

Use::

    emit = build(sink)          # sink: a binary file, e.g. open(os.devnull, "wb")
    emit(example_fields())      # one JSON line, secrets masked
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import IO, Any

import orjson
import structlog

__all__ = ["MASK", "SECRET_KEYS", "build", "example_fields"]

MASK = "[REDACTED]"

#: The key names the redaction step masks: looked up as they are, no normalisation.
SECRET_KEYS = frozenset(
    {"authorization", "cookie", "set_cookie", "password", "api_key", "x_api_key", "token", "access_token", "secret"}
)


def _redact_keys(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The key-set redaction step: a value under a secret key name is replaced by :data:`MASK`."""
    for key in event_dict:
        if key in SECRET_KEYS:
            event_dict[key] = MASK
    return event_dict


def build(sink: IO[bytes]) -> Callable[[dict[str, Any]], None]:
    """A function writing one redacted JSON line of ``fields`` to ``sink`` per call.

    Args:
        sink: a binary file the lines are written to.

    Returns:
        ``emit(fields)``: logs the event ``"call"`` at info with ``fields``.
    """
    log = structlog.wrap_logger(
        structlog.BytesLoggerFactory(sink)(),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_keys,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    ).bind(logger="pyservice.access")
    info = log.info

    def emit(fields: dict[str, Any]) -> None:
        info("call", **fields)

    return emit


def example_fields() -> dict[str, Any]:
    """The fields of one service call event as the plugin logs them, plus two secrets.

    Fifteen call fields (operation, status, duration, caller, request id,
    trace context, sizes...) and an ``authorization`` and a ``password``,
    which the redaction step masks: with ``event``, ``level``, ``timestamp``
    and ``logger``, 21 keys in the line.
    """
    return {
        "side": "service",
        "service": "bench",
        "version": "v1",
        "operation": "echo",
        "outcome": "ok",
        "status": 200,
        "response_size": 52,
        "duration_ms": 0.031,
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "parent_id": None,
        "remote_addr": "127.0.0.1",
        "caller": "client-7",
        "request_size": 48,
        "authorization": "Bearer abc.def",
        "password": "hunter2",
    }
