"""The service side: a SERVER span and the server metrics of each call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry.context import get_current
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode, get_current_span, set_span_in_context

from ._conventions import (
    CLIENT_ADDRESS,
    ERROR_TYPE,
    HTTP_STATUS_CODE,
    PEER_ADDRESS,
    PEER_PORT,
    PROTOCOL_NAME,
    PROTOCOL_VERSION,
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
    from pyservice import Operation, Service, ServiceContext

    from ._telemetry import Telemetry

__all__ = ["EnvironGetter", "service_hook"]


#: Header name -> WSGI environ key, for the headers the propagators ask for.
_ENVIRON_KEYS: dict[str, str] = {}


class EnvironGetter(Getter[Mapping[str, Any]]):
    """Reads propagation headers from a WSGI environ."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        """The values of header ``key``, or ``None`` when absent."""
        name = _ENVIRON_KEYS.get(key)
        if name is None:
            name = "HTTP_" + key.upper().replace("-", "_")
            if len(_ENVIRON_KEYS) < 64:  # the few headers the propagators read, each named once
                _ENVIRON_KEYS[key] = name
        value = carrier.get(name)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        """The header names the environ carries, lowercased with dashes."""
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


_GETTER = EnvironGetter()


def _request_size(context: ServiceContext) -> int | None:
    # Reading context.body would read a body the chain chose not to read (an
    # early answer): the decoded request says it was read.
    if getattr(context, "request", None) is not None:
        return len(context.body)
    length = context.environ.get("CONTENT_LENGTH")
    return int(length) if isinstance(length, str) and length.isdigit() and len(length) <= 18 else None


def _network_attributes(environ: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {PROTOCOL_NAME: "http", TRANSPORT: "tcp"}
    remote = environ.get("REMOTE_ADDR")
    if remote:
        attributes[PEER_ADDRESS] = remote
        attributes[CLIENT_ADDRESS] = remote
    port = environ.get("REMOTE_PORT")
    if isinstance(port, str) and port.isdigit():
        attributes[PEER_PORT] = int(port)
    protocol = environ.get("SERVER_PROTOCOL")
    if isinstance(protocol, str) and protocol.startswith("HTTP/"):
        attributes[PROTOCOL_VERSION] = protocol[5:]
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
    if isinstance(host, str) and host:
        name, _, port_text = host.rpartition(":") if host.rfind(":") > host.rfind("]") else (host, "", "")
        attributes[SERVER_ADDRESS] = name
        server_port = port_text or environ.get("SERVER_PORT")
        if isinstance(server_port, str) and server_port.isdigit():
            attributes[SERVER_PORT] = int(server_port)
    return attributes


def service_hook(
    service: Service,
    operation: Operation,
    telemetry: Telemetry,
    config: Mapping[str, Any],
) -> Callable[[ServiceContext], None]:
    """The request-scope hook of one operation: a SERVER span around the whole call, and its metrics."""
    api = service.api
    base = call_attributes(api.name, operation.name)
    name = base["rpc.method"]
    traces = config["traces"]
    record_metrics = config["metrics"]
    annotations = config["annotations"]
    describe_error = service.describe_error
    kind = SpanKind.SERVER
    instruments_of = telemetry.instruments
    attach, detach = context_api.attach, context_api.detach
    # The global propagator, once seen to read only the default headers (it is set once, at start-up).
    default_propagator: list[Any] = [None]

    # Measurement attributes by (status, error type): built once each, as the SDK hashes them per record.
    measured: dict[tuple[int, str | None], dict[str, Any]] = {}

    def measurement_attributes(status: int, error: str | None) -> dict[str, Any]:
        found = measured.get((status, error))
        if found is None:
            found = {**base, RPC_STATUS_CODE: str(status)}
            if error is not None:
                found[ERROR_TYPE] = error
            if len(measured) < 256:  # bounded: error names come from the api, statuses from the protocol
                measured[(status, error)] = found
        return found

    def otel_service(context: ServiceContext) -> None:
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
            instruments.active.add(1, base)
        span = None
        recording = False
        token = None
        if tracing:
            environ = context.environ
            propagator = get_global_textmap()
            parent = None
            if "HTTP_TRACEPARENT" in environ or "HTTP_BAGGAGE" in environ:
                parent = propagator.extract(environ, getter=_GETTER)
            elif propagator is not default_propagator[0]:
                if _reads_default_headers(propagator):
                    default_propagator[0] = propagator
                else:
                    # Other propagators (B3, Jaeger) read other headers: let them look.
                    parent = propagator.extract(environ, getter=_GETTER)
            if parent is None:
                # Read once: the span's parent and the context it is made current in.
                parent = get_current()
            handed = context.traceparent
            if handed is not None:
                # A plugin listed before this one gave the call its trace id: continue it.
                current = get_current_span(parent).get_span_context()
                parent = continue_handed(handed, parent, current, instruments.tracer, name, kind, base)
            span = instruments.start_span(name, parent, kind, base)
            found = span.get_span_context()
            if found.is_valid:
                # Sampled out too: the context goes on to the calls the handler makes, with its flags.
                token = attach(set_span_in_context(span, parent))
                context.traceparent = traceparent_of(found)
                recording = span.is_recording()
                if recording:
                    span.set_attributes(_network_attributes(environ))
            if not (recording or measuring):
                # Sampled out, no metrics: the call only carries its context on to the handler's calls.
                try:
                    context.process_request()
                finally:
                    if token is not None:
                        detach(token)
                return
        status = 200
        error: str | None = None
        try:
            context.process_request()
            status = context.status
            body = context.response_body
            response_size = None if body is None else len(body)
        except Exception as exc:
            answer = describe_error(exc, context)
            status = answer.status
            response_size = len(answer.body)
            # The caller sees "InternalError"; the span says what it was.
            error = type(exc).__qualname__ if answer.kind == "internal" else answer.name
            if recording:
                assert span is not None
                if answer.kind == "internal":
                    span.record_exception(exc)
                if status >= 500:
                    # A server span is an error when the server failed, not when it
                    # answered a whitelisted exception or refused a bad request.
                    span.set_status(Status(StatusCode.ERROR, f"{answer.name}: HTTP {status}"))
            raise
        finally:
            request_size = _request_size(context) if recording or measuring else None
            if recording:
                assert span is not None
                ending: dict[str, Any] = {HTTP_STATUS_CODE: status, RPC_STATUS_CODE: str(status)}
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
                instruments.active.add(-1, base)

    return otel_service


def _reads_default_headers(propagator: Any) -> bool:
    """Whether ``propagator`` reads only W3C ``traceparent``/``tracestate`` and ``baggage`` (the default)."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    members = getattr(propagator, "_propagators", [propagator])
    return all(type(member) in (TraceContextTextMapPropagator, W3CBaggagePropagator) for member in members)
