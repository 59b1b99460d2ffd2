"""The ``logging`` plugin: one structured event per call on each side, request ids across services."""

from __future__ import annotations

import contextvars
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from pyservice import ApiError, ClientError, Option, Plugin, ServiceError, TransportError
from pyservice.checks import one_of
from structlog.contextvars import bind_contextvars, merge_contextvars, reset_contextvars
from structlog.typing import Processor

from ._output import LEVELS, TimeStamper, build_renderer, configure_stdlib, install_sink
from ._redact import redact_config
from ._redaction import Redactor
from ._request_id import (
    _CURRENT,
    adopt_traceparent,
    format_traceparent,
    incoming_trace,
    new_span_id,
    outgoing_trace,
)

if TYPE_CHECKING:
    from pyservice import Client, ClientContext, ErrorAnswer, Operation, Service, ServiceContext

__all__ = ["CALL_FIELDS", "LoggingPlugin"]

#: The fields a call event may carry; ``fields`` picks among them.
CALL_FIELDS = (
    "side",
    "service",
    "version",
    "operation",
    "outcome",
    "error",
    "status",
    "duration_ms",
    "request_id",
    "trace_id",
    "span_id",
    "parent_id",
    "remote_addr",
    "caller",
    "peer",
    "request_size",
    "response_size",
    "attempts",
    "retries",
    "detail",
    "headers",
    "request",
    "response",
)
_RETRY_STATUSES = frozenset({502, 503, 504})
_TRUNCATED = "...[truncated]"


def _fields(value: list[Any]) -> list[str]:
    unknown = [field for field in value if field not in CALL_FIELDS]
    if unknown:
        raise ValueError(f"expected field names among {', '.join(CALL_FIELDS)}; unknown: {unknown[0]!r}")
    return list(value)


def _rate(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a fraction from 0 to 1")
    return float(value)


def _header_name(value: str) -> str:
    if not value or not all(char.isalnum() or char == "-" for char in value):
        raise ValueError("expected an HTTP header name made of letters, digits and '-'")
    return value


def _positive(value: int) -> int:
    if value < 16:
        raise ValueError("expected an integer of at least 16")
    return value


_SAMPLE_RATE = Option(float, 1.0, "Fraction of successful calls logged; failures are always logged.", check=_rate)
_LOG_BODIES = Option(bool, False, "Log the request and response fields, redacted then truncated.")
_LOG_HEADERS = Option(bool, False, "Log the request headers, redacted.")


class LoggingPlugin(Plugin):
    """Structured access logs with structlog, and request ids across services.

    On a service, one event per call when it ends: outcome, status,
    duration, sizes, the request id. The handler and later hooks find a
    logger bound to the call as ``context.log`` and its request id as
    ``context.request_id``; the request id is also bound with structlog's
    contextvars helpers, so an application's own structlog loggers that
    merge contextvars carry it too. On a client, one event per call, retries
    and transport errors included, and the request id sent in a header.

    Events go through the plugin's own processor chain, never through
    structlog's global configuration, and secrets are masked just before
    the renderer (see :class:`~pyservice_logging.Redactor`).
    """

    name = "logging"
    options: ClassVar[Mapping[str, Option]] = {
        "renderer": Option(str, "json", "'json' (JSON lines) or 'console'.", check=one_of(("json", "console"))),
        "level": Option(str, "info", "The lowest level written.", check=one_of(LEVELS)),
        "fields": Option(list, list(CALL_FIELDS), "The call fields events may carry.", check=_fields),
        "sample_rate": _SAMPLE_RATE,
        "logger_name": Option(
            str, "pyservice.access", "The `logger` field; with output stdlib, the stdlib logger lines go to."
        ),
        "output": Option(
            str,
            "stderr",
            "'stderr', 'stdout', or 'stdlib' (the application's handlers).",
            check=one_of(("stderr", "stdout", "stdlib")),
        ),
        "configure_stdlib": Option(
            bool, False, "Render every stdlib log record the same way (replaces root handlers)."
        ),
        "log_bodies": _LOG_BODIES,
        "log_headers": _LOG_HEADERS,
        "body_limit": Option(int, 2048, "Characters of a logged body kept after redaction.", check=_positive),
        "request_id_header": Option(str, "X-Request-ID", "The header carrying the request id.", check=_header_name),
    }
    operation_options: ClassVar[Mapping[str, Option]] = {
        "sample_rate": _SAMPLE_RATE,
        "log_bodies": _LOG_BODIES,
        "log_headers": _LOG_HEADERS,
    }

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        if config["configure_stdlib"] and config["output"] == "stdlib":
            raise ApiError(
                "plugins.logging.output",
                "expected 'stdout' or 'stderr' with configure_stdlib (stdlib would render lines twice), got 'stdlib'",
            )
        self.log: Any = None
        self._emit: Callable[[str, dict[str, Any]], None] = _no_emit
        self.redactor = Redactor()

    def setup(self, owner: Service | Client) -> None:
        """Build the processor chain and the sink, then register per-operation hooks."""
        config = self.config
        # The redact plugin's config is read from the api, not from the plugin
        # instance, so redaction is in place whichever of the two comes first.
        redact = redact_config(owner.api.plugins)
        self.redactor = Redactor(
            redact.get("fields", ()),
            card_numbers=redact.get("card_numbers", True),
            mask=redact.get("mask", "[REDACTED]"),
        )
        level = LEVELS[config["level"]]
        output = config["output"]
        # Lines to stdout/stderr are bytes written straight to the stream;
        # the stdlib's handlers take text.
        final = build_renderer(config["renderer"], output, self.redactor, text=output == "stdlib")
        sink = install_sink(config["logger_name"], level, output)
        if config["configure_stdlib"]:
            configure_stdlib(level, output, build_renderer(config["renderer"], output, self.redactor, text=True))
        processors: list[Processor] = [
            merge_contextvars,
            structlog.processors.add_log_level,
            TimeStamper(),
            *final,
        ]
        # Explicit processors: the application's global structlog configuration
        # is neither used nor changed. Bound once, at start-up, and kept: a
        # concrete filtering logger, whose disabled levels are a bare return.
        self.log = structlog.wrap_logger(
            sink,
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(level),
        ).bind(logger=config["logger_name"])
        self._emit = _emitter(processors, sink, level)
        self._info = level <= logging.INFO
        self._errors = level <= logging.ERROR
        for op in owner.api.operations.values():
            op_config = self.operation_config(op)
            if op_config is None:
                continue
            if owner.side == "service":
                owner.plugin("request", operations=[op.name], name=self.name)(
                    self._service_hook(owner, op, op_config)  # type: ignore[arg-type]
                )
            else:
                owner.plugin("request", operations=[op.name], name=self.name)(
                    self._client_hook(owner, op, op_config)  # type: ignore[arg-type]
                )
                owner.plugin("attempt", operations=[op.name], name=self.name)(self._attempt_hook(op_config))

    # -- shared -----------------------------------------------------------

    def _body(self, fields: Any, limit: int) -> str:
        text = _dumps(self.redactor.redact(fields))
        return text if len(text) <= limit else text[:limit] + _TRUNCATED

    def _select(self, wanted: frozenset[str]) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        if wanted.issuperset(CALL_FIELDS):
            return None

        kept = wanted | {"logger"}

        def select(event: dict[str, Any]) -> dict[str, Any]:
            return {key: value for key, value in event.items() if key in kept}

        return select

    # -- service side -----------------------------------------------------

    def _service_hook(self, service: Service, op: Operation, config: Mapping[str, Any]) -> Callable[..., None]:
        log = self.log
        api = service.api
        header = config["request_id_header"]
        environ_key = "HTTP_" + header.upper().replace("-", "_")
        wanted = frozenset(config["fields"])
        select = self._select(wanted)
        sample_rate = config["sample_rate"]
        log_ok = self._info
        log_errors = self._errors
        log_bodies = config["log_bodies"] and ("request" in wanted or "response" in wanted)
        log_headers = config["log_headers"] and "headers" in wanted
        limit = config["body_limit"]
        describe_error = service.describe_error
        emit = self._emit
        # The fields in the order a bound logger would give them: its bound "logger" first.
        base = {
            "logger": config["logger_name"],
            "side": "service",
            "service": api.name,
            "version": api.version,
            "operation": op.name,
        }

        set_trace, reset_trace = _CURRENT.set, _CURRENT.reset
        request_id_var = _request_id_var()
        set_request_id, reset_request_id = request_id_var.set, request_id_var.reset
        perf_counter = time.perf_counter

        def logging_hook(context: ServiceContext) -> None:
            started = perf_counter()
            trace = incoming_trace(context.environ, environ_key)
            # One trace id per call with a tracing plugin: the one listed first gives it.
            if not adopt_traceparent(trace, context.traceparent):
                context.traceparent = format_traceparent(trace.trace_id, trace.span_id, trace.flags)
            request_id = trace.request_id
            trace_token = set_trace(trace)
            bound = set_request_id(request_id)
            context.log = log  # type: ignore[attr-defined]
            context.request_id = request_id  # type: ignore[attr-defined]
            context.response_headers.append((header, request_id))
            try:
                try:
                    context.process_request()
                except Exception as exc:
                    answer = describe_error(exc, context)
                    outcome, method = _SERVICE_OUTCOMES[answer.kind]
                    try:
                        event = _service_event(base, context, trace, started, outcome, answer)
                        if answer.kind == "internal":
                            # The caller sees "InternalError"; the log says what it was.
                            event["error"] = type(exc).__name__
                            if context.response_body is not None:
                                # The answer was encoded: the handler succeeded and a hook failed after it.
                                event["detail"] = _FAILED_AFTER_HANDLER
                        if log_bodies and _decoded(context):
                            event["request"] = self._body(context.request, limit)
                        if log_headers:
                            event["headers"] = dict(context.headers)
                        if select is not None:
                            event = select(event)
                        if method == "error":
                            event["exc_info"] = exc
                        event["event"] = "call"
                        emit(method, event)
                    except Exception as failure:  # the call's own error is what the caller gets
                        _event_failed(emit, base, outcome, failure)
                    else:
                        if log_errors:
                            # Our event carries the traceback: the service need not log it again.
                            context.error_logged = True
                    raise
                if not log_ok or (sample_rate < 1.0 and random.random() >= sample_rate):  # noqa: S311 - sampling
                    return
                try:
                    event = _service_event(base, context, trace, started, "ok", None)
                    if sample_rate < 1.0:
                        event["sample_rate"] = sample_rate
                    if log_bodies:
                        if _decoded(context):
                            event["request"] = self._body(context.request, limit)
                        event["response"] = self._body(context.response, limit)
                    if log_headers:
                        event["headers"] = dict(context.headers)
                    if select is not None:
                        event = select(event)
                    event["event"] = "call"
                    emit("info", event)
                except Exception as failure:  # logging never turns an answered call into an error
                    _event_failed(emit, base, "ok", failure)
            finally:
                reset_request_id(bound)
                reset_trace(trace_token)

        return logging_hook

    # -- client side ------------------------------------------------------

    def _client_hook(self, client: Client, op: Operation, config: Mapping[str, Any]) -> Callable[..., None]:
        api = client.api
        header = config["request_id_header"]
        lowered = header.lower()
        wanted = frozenset(config["fields"])
        select = self._select(wanted)
        sample_rate = config["sample_rate"]
        log_ok = self._info
        log_bodies = config["log_bodies"] and ("request" in wanted or "response" in wanted)
        log_headers = config["log_headers"] and "headers" in wanted
        limit = config["body_limit"]
        exceptions = api.exceptions
        emit = self._emit
        base = {
            "logger": config["logger_name"],
            "side": "client",
            "service": api.name,
            "version": api.version,
            "operation": op.name,
            "peer": api.endpoint.base_url,
        }

        def logging_hook(context: ClientContext) -> None:
            started = time.perf_counter()
            explicit = None
            for name, value in context.headers.items():
                if name.lower() == lowered:
                    explicit = value
                    del context.headers[name]
                    break
            trace = outgoing_trace(explicit)
            handed = context.traceparent
            own = None
            if handed is not None:
                adopt_traceparent(trace, handed)
                trace.span_id = ""  # filled per attempt
            else:
                # A tracing plugin listed after this one continues this trace.
                own = format_traceparent(trace.trace_id, trace.parent_id or new_span_id(), trace.flags)
                context.traceparent = own
            context.logging_traceparent = own  # type: ignore[attr-defined]
            context.trace = trace  # type: ignore[attr-defined]
            context.request_id = trace.request_id  # type: ignore[attr-defined]
            context.retried = []  # type: ignore[attr-defined]
            try:
                context.process_request()
            except Exception as exc:
                outcome, error, status, method = _client_outcome(exc, context.status, exceptions)
                event = _client_event(base, context, trace, started, outcome, status)
                event["error"] = error
                if isinstance(exc, TransportError):
                    event["detail"] = str(exc)[:300]
                if log_bodies:
                    event["request"] = self._body(context.request, limit)
                if log_headers:
                    event["headers"] = dict(context.headers)
                if select is not None:
                    event = select(event)
                event["event"] = "call"
                emit(method, event)
                raise
            if not log_ok or (sample_rate < 1.0 and random.random() >= sample_rate):  # noqa: S311 - sampling
                return
            try:
                event = _client_event(base, context, trace, started, "ok", context.status)
                if sample_rate < 1.0:
                    event["sample_rate"] = sample_rate
                if log_bodies:
                    event["request"] = self._body(context.request, limit)
                    event["response"] = self._body(context.response, limit)
                if log_headers:
                    event["headers"] = dict(context.headers)
                if select is not None:
                    event = select(event)
                event["event"] = "call"
                emit("info", event)
            except Exception as failure:  # logging never turns an answered call into an error
                _event_failed(emit, base, "ok", failure)

        return logging_hook

    def _attempt_hook(self, config: Mapping[str, Any]) -> Callable[..., None]:
        header = config["request_id_header"]

        def logging_attempt(context: ClientContext) -> None:
            trace = context.trace  # type: ignore[attr-defined]
            # Each HTTP attempt is its own span of the same trace.
            handed = context.traceparent
            # A tracing plugin's span of this call or attempt (not the one this plugin handed on).
            own = context.logging_traceparent  # type: ignore[attr-defined]
            parts = handed.split("-") if handed is not None and handed != own else []
            if parts[1:2] == [trace.trace_id]:
                trace.span_id = parts[2]
            else:
                trace.span_id = new_span_id()
            context.headers[header] = trace.request_id
            context.headers["traceparent"] = format_traceparent(trace.trace_id, trace.span_id, trace.flags)
            try:
                context.process_request()
            except TransportError as exc:
                context.retried.append({"attempt": context.attempt, "error": type(exc).__name__})  # type: ignore[attr-defined]
                raise
            if context.status in _RETRY_STATUSES:
                context.retried.append({"attempt": context.attempt, "status": context.status})  # type: ignore[attr-defined]

        return logging_attempt


_FAILED_AFTER_HANDLER = "the handler succeeded; a hook failed after it, and the answer became this error"

stdlib_logger = logging.getLogger("pyservice.logging")


def _event_failed(
    emit: Callable[[str, dict[str, Any]], None], base: Mapping[str, Any], outcome: str, failure: Exception
) -> None:
    """Say that a call's event could not be built or written, in an event of its own; never raises.

    The call's answer stands: a failure to log it must not change it.
    """
    event = dict(base)
    event["outcome"] = outcome
    event["detail"] = f"the call event could not be written: {type(failure).__name__}: {str(failure)[:200]}"
    event["event"] = "call"
    try:
        emit("error", event)
    except Exception:  # the sink itself fails: the stdlib logger is the last resort
        stdlib_logger.exception("pyservice-logging could not write the event of a %s call", outcome)


def _no_emit(method_name: str, event_dict: dict[str, Any]) -> None:
    """Before setup: nothing to write to."""


def _emitter(processors: list[Processor], sink: Any, level: int) -> Callable[[str, dict[str, Any]], None]:
    """``emit(method_name, event_dict)``: what ``log.<method_name>(**fields)`` does, for a ready event dict.

    A filtering bound logger copies its context into a new dict, adds the
    keyword arguments and the event, runs the processors and calls its
    logger's method. The call event is built whole by the hook, in the same
    order (``logger``, the fields, ``event``), so the processors run on it
    directly: the same chain and the same line, without two dict copies
    and three calls. Levels below ``level`` are dropped, as the bound
    logger drops them.
    """
    enabled = frozenset(name for name, number in LEVELS.items() if number >= level)

    def emit(method_name: str, event_dict: dict[str, Any]) -> None:
        if method_name not in enabled:
            return
        line: Any = event_dict
        try:
            for processor in processors:
                line = processor(sink, method_name, line)
        except structlog.DropEvent:
            return
        getattr(sink, method_name)(line)

    return emit


def _request_id_var() -> contextvars.ContextVar[Any]:
    """The context variable behind ``bind_contextvars(request_id=...)``.

    Setting it is what ``bind_contextvars`` does, and resetting it with the
    token what ``reset_contextvars`` does, without their per-call dict and
    name formatting: structlog makes one variable per key and keeps it, and
    hands it out in the token it returns.
    """
    tokens = bind_contextvars(request_id=None)
    reset_contextvars(**tokens)
    return tokens["request_id"].var


def _dumps(value: Any) -> str:
    # Anything JSON cannot hold is shown by its repr rather than failing the call.
    return json.dumps(value, default=repr, ensure_ascii=False, separators=(",", ":"))


# Outcome and log method by the kind ``describe_error`` gives.
_SERVICE_OUTCOMES = {
    "exception": ("exception", "info"),
    "protocol": ("rejected", "warning"),
    "internal": ("internal_error", "error"),
}


def _service_event(
    base: Mapping[str, Any],
    context: ServiceContext,
    trace: Any,
    started: float,
    outcome: str,
    answer: ErrorAnswer | None,
) -> dict[str, Any]:
    event = dict(base)
    event["outcome"] = outcome
    if answer is not None:
        event["error"] = answer.name
        event["status"] = answer.status
        event["response_size"] = len(answer.body)
    else:
        event["status"] = context.status
        body = context.response_body
        event["response_size"] = None if body is None else len(body)
    event["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    event["request_id"] = trace.request_id
    event["trace_id"] = trace.trace_id
    event["span_id"] = trace.span_id
    event["parent_id"] = trace.parent_id
    event["remote_addr"] = context.remote_addr
    event["caller"] = context.caller
    event["request_size"] = _request_size(context)
    _annotate(event, context)
    return event


def _annotate(event: dict[str, Any], context: Any) -> None:
    # What other plugins said about the call (a cache's hit or miss), never
    # overriding the event's own fields.
    for key, value in context.annotations.items():
        event.setdefault(key, value)


def _decoded(context: ServiceContext) -> bool:
    # Typed as always set, the request is None until the body is decoded.
    return getattr(context, "request", None) is not None


def _request_size(context: ServiceContext) -> int | None:
    # Reading context.body here would read a body the chain chose not to read
    # (a hook that answered early): the decoded request says it was read.
    if _decoded(context):
        return len(context.body)
    length = context.environ.get("CONTENT_LENGTH")
    return int(length) if isinstance(length, str) and length.isdigit() and len(length) <= 18 else None


def _client_event(
    base: Mapping[str, Any], context: ClientContext, trace: Any, started: float, outcome: str, status: int | None
) -> dict[str, Any]:
    event = dict(base)
    event["outcome"] = outcome
    event["status"] = status
    event["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    event["request_id"] = trace.request_id
    event["trace_id"] = trace.trace_id
    event["span_id"] = trace.span_id or None
    event["parent_id"] = trace.parent_id
    event["request_size"] = None if context.body is None else len(context.body)
    answer = context.http_response
    length = None if answer is None else answer.headers.get("Content-Length")
    event["response_size"] = int(length) if length is not None and length.isdigit() else None
    event["attempts"] = context.attempt
    retried = context.retried  # type: ignore[attr-defined]
    # The last attempt's failure is the call's own error, not a retry.
    event["retries"] = [entry for entry in retried if entry["attempt"] < context.attempt] or None
    _annotate(event, context)
    return event


def _client_outcome(
    exc: BaseException, status: int | None, exceptions: Mapping[str, int]
) -> tuple[str, str, int | None, str]:
    """``(outcome, error, status, log method)`` of a call that raised ``exc``."""
    if isinstance(exc, ServiceError):
        if exc.kind == "protocol":
            return "rejected", exc.name, exc.status, "warning"
        if exc.kind == "exception":
            return "exception", exc.name, exc.status, "info"
        return "internal_error", exc.name, exc.status, "error"
    if isinstance(exc, TransportError):
        return "transport_error", type(exc).__name__, None, "error"
    if isinstance(exc, ClientError):
        return "invalid_response", type(exc).__name__, status, "error"
    name = type(exc).__name__
    if name in exceptions:
        return "exception", name, status, "info"
    return "error", name, status, "error"
