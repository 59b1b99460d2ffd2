"""The client side: a CLIENT span per call, one per HTTP attempt, and the client metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context as context_api
from opentelemetry.propagate import get_global_textmap
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, get_current_span, set_span_in_context
from pyservice import ClientError, ServiceError, ServiceException

from ._conventions import (
    ERROR_TYPE,
    HTTP_RESEND_COUNT,
    HTTP_STATUS_CODE,
    PROTOCOL_NAME,
    REQUEST_SIZE,
    RESPONSE_SIZE,
    RPC_STATUS_CODE,
    SERVER_ADDRESS,
    SERVER_PORT,
    TRANSPORT,
    annotation_attributes,
    call_attributes,
)
from ._handoff import continue_handed, traceparent_of

if TYPE_CHECKING:
    from pyservice import Client, ClientContext, Operation

    from ._telemetry import Telemetry

__all__ = ["attempt_hook", "client_hook"]

_RETRY_STATUSES = frozenset({502, 503, 504})


class _CallState:
    """What the call's hook leaves on the context for its attempt hook."""

    __slots__ = ("attempt_ended", "span")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.attempt_ended: float | None = None


def _server_attributes(base_url: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    attributes: dict[str, Any] = {PROTOCOL_NAME: "http", TRANSPORT: "tcp"}
    if parts.hostname:
        attributes[SERVER_ADDRESS] = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    attributes[SERVER_PORT] = port
    return attributes


def _error_type(exc: BaseException) -> tuple[str, int | None, bool]:
    """``(error.type, HTTP status, expected)``: expected errors are the api's whitelisted exceptions."""
    if isinstance(exc, ServiceException):
        return type(exc).__name__, None, True
    if isinstance(exc, ServiceError):
        return exc.name, exc.status, False
    if isinstance(exc, ClientError):
        return type(exc).__name__, getattr(exc, "status", None), False
    return type(exc).__qualname__, None, False


def _response_size(context: ClientContext) -> int | None:
    answer = context.http_response
    length = None if answer is None else answer.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() and len(length) <= 18 else None


def client_hook(
    client: Client,
    operation: Operation,
    telemetry: Telemetry,
    config: Mapping[str, Any],
    propagate_here: bool,
) -> Callable[[ClientContext], None]:
    """The request-scope hook of one operation: a CLIENT span around the whole call, and its metrics.

    Args:
        propagate_here: send the call span's trace context in the headers
            (when there are no attempt spans to send instead).
    """
    api = client.api
    base = call_attributes(api.name, operation.name)
    server = _server_attributes(api.endpoint.base_url)
    starting = {**base, **server}
    name = base["rpc.method"]
    traces = config["traces"]
    record_metrics = config["metrics"]
    annotations = config["annotations"]
    kind = SpanKind.CLIENT
    instruments_of = telemetry.instruments
    attach, detach = context_api.attach, context_api.detach
    measured: dict[tuple[int | None, str | None], dict[str, Any]] = {}

    def measurement_attributes(status: int | None, error: str | None) -> dict[str, Any]:
        found = measured.get((status, error))
        if found is None:
            found = dict(starting)
            if status is not None:
                found[RPC_STATUS_CODE] = str(status)
            if error is not None:
                found[ERROR_TYPE] = error
            if len(measured) < 256:
                measured[(status, error)] = found
        return found

    def otel_client(context: ClientContext) -> None:
        instruments = telemetry.current or instruments_of()
        if telemetry.waiting and monotonic() >= telemetry.next_global_check:
            instruments = telemetry.look_for_global()
        tracing = traces and instruments.tracing
        measuring = record_metrics and instruments.measuring
        if not (tracing or measuring):
            # No-op providers: nothing to record, so nothing to pay for.
            context.process_request()
            return
        started = 0.0
        if measuring:
            started = perf_counter()
            instruments.active.add(1, starting)
        span = None
        token = None
        if tracing:
            parent = None
            handed = context.traceparent
            if handed is not None:
                current = get_current_span().get_span_context()
                parent = continue_handed(handed, None, current, instruments.tracer, name, kind, starting)
            span = instruments.start_span(name, parent, kind, starting)
            found = span.get_span_context()
            if found.is_valid:
                token = attach(set_span_in_context(span, parent))
                context.traceparent = traceparent_of(found)
                if propagate_here:
                    get_global_textmap().inject(context.headers)
            else:
                span = None
        context.otel = _CallState(span)  # type: ignore[attr-defined]
        status: int | None = None
        error: str | None = None
        try:
            context.process_request()
            status = context.status
        except Exception as exc:
            error, status, expected = _error_type(exc)
            status = status or context.status
            if span is not None and span.is_recording():
                if not expected:
                    span.record_exception(exc)
                # On a client every failed call is an error, a whitelisted exception included.
                span.set_status(Status(StatusCode.ERROR, error))
            raise
        finally:
            recording = span is not None and span.is_recording()
            request_size = response_size = None
            if recording or measuring:
                body = context.body
                request_size = None if body is None else len(body)
                response_size = _response_size(context)
            if span is not None:
                if recording:
                    ending: dict[str, Any] = {"pyservice.attempts": context.attempt}
                    if status is not None:
                        ending[HTTP_STATUS_CODE] = status
                        ending[RPC_STATUS_CODE] = str(status)
                    if error is not None:
                        ending[ERROR_TYPE] = error
                    if request_size is not None:
                        ending[REQUEST_SIZE] = request_size
                    if response_size is not None:
                        ending[RESPONSE_SIZE] = response_size
                    if annotations and context.annotations:
                        ending.update(annotation_attributes(context.annotations))
                    span.set_attributes(ending)
                span.end()
            if token is not None:
                detach(token)
            if measuring:
                attributes = measurement_attributes(status, error)
                instruments.duration.record(perf_counter() - started, attributes)
                if request_size is not None:
                    instruments.request_size.record(request_size, attributes)
                if response_size is not None:
                    instruments.response_size.record(response_size, attributes)
                instruments.active.add(-1, starting)

    return otel_client


def attempt_hook(client: Client, operation: Operation, telemetry: Telemetry) -> Callable[[ClientContext], None]:
    """The attempt-scope hook: a CLIENT span per HTTP attempt, retries and back-off as events of the call's span.

    The attempt's span is the one whose trace context goes on the wire, so a
    retried call shows each attempt, and the server span under the attempt
    that reached it.
    """
    api = client.api
    base = {**call_attributes(api.name, operation.name), **_server_attributes(api.endpoint.base_url)}
    url = api.endpoint.base_url + api.endpoint.path_for(api.version, operation.name)
    base["url.full"] = url
    name = base["rpc.method"]
    kind = SpanKind.CLIENT
    instruments_of = telemetry.instruments

    def otel_attempt(context: ClientContext) -> None:
        state: _CallState | None = getattr(context, "otel", None)
        call_span = None if state is None else state.span
        if call_span is None:
            context.process_request()
            return
        attempt = context.attempt
        if attempt > 1 and state is not None and state.attempt_ended is not None and call_span.is_recording():
            waited = perf_counter() - state.attempt_ended
            # The client waited this long (back-off, or the Retry-After it was given) before trying again.
            call_span.add_event("pyservice.retry", {"pyservice.attempt": attempt, "pyservice.backoff_s": waited})
        parent = set_span_in_context(call_span)
        attributes = base if attempt == 1 else {**base, HTTP_RESEND_COUNT: attempt - 1}
        span = (telemetry.current or instruments_of()).start_span(name, parent, kind, attributes)
        get_global_textmap().inject(context.headers, context=set_span_in_context(span, parent))
        outer = context.traceparent
        found = span.get_span_context()
        context.traceparent = traceparent_of(found)
        try:
            context.process_request()
        except Exception as exc:
            if span.is_recording():
                error = _error_type(exc)[0]
                span.record_exception(exc)
                span.set_attributes({ERROR_TYPE: error})
                span.set_status(Status(StatusCode.ERROR, error))
            if call_span.is_recording():
                failed: dict[str, Any] = {"pyservice.attempt": attempt, ERROR_TYPE: _error_type(exc)[0]}
                call_span.add_event("pyservice.attempt_failed", failed)
            raise
        else:
            status = context.status
            if span.is_recording() and status is not None:
                span.set_attribute(HTTP_STATUS_CODE, status)
                if status >= 400:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            retry_after = context.retry_after
            if call_span.is_recording() and (retry_after is not None or status in _RETRY_STATUSES):
                event: dict[str, Any] = {"pyservice.attempt": attempt}
                if status is not None:
                    event[HTTP_STATUS_CODE] = status
                if retry_after is not None:
                    event["pyservice.retry_after_s"] = float(retry_after)
                call_span.add_event("pyservice.attempt_failed", event)
        finally:
            span.end()
            context.traceparent = outer
            if state is not None:
                state.attempt_ended = perf_counter()

    return otel_attempt
