from __future__ import annotations

import pyservice
import pyservice.testing
import pytest
from opentelemetry.trace import SpanKind, StatusCode

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
API = {"name": "things", "operations": ["get_thing", "fail"], "exceptions": {"NoSuchThing": {"status": 404}}}


def make_service(otel, plugins=None, **config):
    service = pyservice.Service(**API, plugins=plugins or {"otel": otel.config(**config)})

    @service.operation("get_thing")
    def get_thing(request, response, context):
        if request.id == "missing":
            raise service.exceptions.NoSuchThing("no such thing")
        context.annotate(cache="miss", cache_age_s=1.5, ignored={"not": "a scalar"})
        response.id = request.id

    @service.operation("fail")
    def fail(request, response, context):
        raise RuntimeError("boom")

    return service


def plain_client(service):
    # The client of the same api without the plugin: these tests look at the server span alone.
    return pyservice.testing.client_for(service, API)


def call(service, operation, headers=None, **fields):
    client = plain_client(service)
    return client.call(operation, fields, headers=headers)


def test_a_call_makes_one_server_span_named_by_the_rpc_conventions(otel):
    call(make_service(otel), "get_thing", id="a")
    span = otel.span("SERVER")
    assert span.kind is SpanKind.SERVER
    assert span.name == "things/get_thing"
    assert span.attributes["rpc.system.name"] == "pyservice"
    assert span.attributes["rpc.system"] == "pyservice"
    assert span.attributes["rpc.service"] == "things"
    assert span.attributes["rpc.method"] == "things/get_thing"
    assert span.attributes["rpc.response.status_code"] == "200"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


def test_the_server_span_carries_the_network_peer_and_sizes(otel):
    call(make_service(otel), "get_thing", id="a")
    attributes = otel.span("SERVER").attributes
    assert attributes["network.peer.address"] == "127.0.0.1"
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["network.protocol.name"] == "http"
    assert attributes["rpc.request.size"] == len(b'{"id":"a"}')
    assert attributes["rpc.response.size"] == len(b'{"id":"a"}')


def test_an_incoming_traceparent_is_continued(otel):
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=value"}
    call(make_service(otel), "get_thing", headers=headers, id="a")
    span = otel.span("SERVER")
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.parent.is_remote
    assert span.context.trace_state.get("vendor") == "value"


def test_a_malformed_traceparent_starts_a_new_trace(otel):
    call(make_service(otel), "get_thing", headers={"traceparent": "00-nothex-nothex-01"}, id="a")
    span = otel.span("SERVER")
    assert span.parent is None


def test_a_whitelisted_exception_sets_error_type_but_not_the_error_status(otel):
    service = make_service(otel)
    with pytest.raises(service.exceptions.NoSuchThing):
        call(service, "get_thing", id="missing")
    span = otel.span("SERVER")
    assert span.attributes["error.type"] == "NoSuchThing"
    assert span.attributes["http.response.status_code"] == 404
    assert span.status.status_code is StatusCode.UNSET
    assert not span.events


def test_an_internal_error_records_the_exception_and_marks_the_span(otel):
    with pytest.raises(pyservice.ServiceError):
        call(make_service(otel), "fail")
    span = otel.span("SERVER")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert span.attributes["http.response.status_code"] == 500
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RuntimeError"
    assert event.attributes["exception.message"] == "boom"


def test_a_refused_request_names_the_protocol_error(otel):
    service = make_service(otel)
    client = plain_client(service)
    url = client.compile()["get_thing"].url
    answer = client.session.post(url, data=b"[1]", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    span = otel.span("SERVER")
    assert span.attributes["error.type"] == "MalformedRequest"
    assert span.status.status_code is StatusCode.UNSET


def test_annotations_of_other_plugins_become_span_attributes(otel):
    call(make_service(otel), "get_thing", id="a")
    attributes = otel.span("SERVER").attributes
    assert attributes["pyservice.cache"] == "miss"
    assert attributes["pyservice.cache_age_s"] == 1.5
    assert "pyservice.ignored" not in attributes


def test_annotations_can_be_left_off_the_span(otel):
    call(make_service(otel, annotations=False), "get_thing", id="a")
    assert "pyservice.cache" not in otel.span("SERVER").attributes


def test_an_operation_can_switch_traces_off(otel):
    api = {**API, "operations": {"get_thing": {"plugins": {"otel": {"traces": False}}}, "fail": {}}}
    service = pyservice.Service(**api, plugins={"otel": otel.config()})
    service.operation("get_thing")(lambda request, response, context: None)
    plain_client(service).get_thing()
    assert otel.spans() == []
    assert otel.points("rpc.server.call.duration")


def test_the_handler_runs_inside_the_server_span(otel):
    from opentelemetry import trace

    seen = []
    service = pyservice.Service(**API, plugins={"otel": otel.config()})

    @service.operation("get_thing")
    def get_thing(request, response, context):
        seen.append(trace.get_current_span().get_span_context().span_id)

    plain_client(service).get_thing()
    assert seen == [otel.span("SERVER").context.span_id]
    assert not trace.get_current_span().get_span_context().is_valid


def test_without_a_configured_provider_calls_make_no_spans_and_still_answer():
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    config = {"tracer_provider": NoOpTracerProvider(), "meter_provider": NoOpMeterProvider()}
    service = pyservice.Service(**API, plugins={"otel": config})
    service.operation("get_thing")(lambda request, response, context: setattr(response, "ok", True))
    assert pyservice.testing.client_for(service).get_thing().ok is True


class CustomPropagator:
    """Reads a parent from a header the default propagators do not know (as B3 would)."""

    fields = {"x-custom-parent"}

    def extract(self, carrier, context=None, getter=None):
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

        values = getter.get(carrier, "x-custom-parent")
        if not values:
            return context
        trace_id, span_id = values[0].split(":")
        parent = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
        return set_span_in_context(NonRecordingSpan(parent), context)

    def inject(self, carrier, context=None, setter=None):
        pass


def test_the_configured_propagators_read_the_request_headers(otel):
    from opentelemetry.propagate import get_global_textmap, set_global_textmap

    default = get_global_textmap()
    set_global_textmap(CustomPropagator())
    try:
        call(make_service(otel), "get_thing", headers={"X-Custom-Parent": f"{TRACE_ID}:{PARENT_ID}"}, id="a")
    finally:
        set_global_textmap(default)
    span = otel.span("SERVER")
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
