from __future__ import annotations

import pyservice
import pyservice.testing
import pytest
from opentelemetry.trace import SpanKind, StatusCode

API = {
    "name": "things",
    "operations": {"get_thing": {"idempotent": True}},
    "exceptions": {"NoSuchThing": {"status": 404}},
    "retries": 2,
}


def make_client(otel, answers=None, **config):
    """A client with the plugin, answered in-process by a service without it (its spans are the client's alone)."""
    service = pyservice.Service(**API)
    statuses = list(answers or [])
    headers_seen = []

    @service.plugin("request")
    def flaky(context):
        headers_seen.append(context.environ.get("HTTP_TRACEPARENT"))
        if statuses:
            context.status = statuses.pop(0)
        context.process_request()

    @service.operation("get_thing")
    def get_thing(request, response, context):
        if request.id == "missing":
            raise service.exceptions.NoSuchThing("no such thing")
        response.id = request.id

    client = pyservice.testing.client_for(service, {**API, "plugins": {"otel": otel.config(**config)}})
    return client, headers_seen


def test_a_call_makes_a_client_span_with_one_attempt_span_under_it(otel):
    client, _ = make_client(otel)
    client.get_thing(id="a")
    spans = otel.spans()
    call = next(span for span in spans if span.parent is None)
    (attempt,) = [span for span in spans if span is not call]
    assert call.kind is SpanKind.CLIENT
    assert attempt.kind is SpanKind.CLIENT
    assert call.name == attempt.name == "things/get_thing"
    assert attempt.parent.span_id == call.context.span_id
    assert call.attributes["rpc.method"] == "things/get_thing"
    assert call.attributes["server.address"] == "127.0.0.1"
    assert call.attributes["pyservice.attempts"] == 1
    assert attempt.attributes["http.response.status_code"] == 200


def test_the_attempt_span_is_the_parent_sent_on_the_wire(otel):
    client, seen = make_client(otel)
    client.get_thing(id="a")
    attempt = next(span for span in otel.spans() if span.parent is not None)
    trace_id, span_id = f"{attempt.context.trace_id:032x}", f"{attempt.context.span_id:016x}"
    assert seen == [f"00-{trace_id}-{span_id}-{attempt.context.trace_flags:02x}"]


def test_a_retried_call_has_a_span_per_attempt_and_the_retry_as_an_event(otel):
    client, seen = make_client(otel, answers=[503])
    client.get_thing(id="a")
    spans = otel.spans()
    call = next(span for span in spans if span.parent is None)
    attempts = sorted((span for span in spans if span is not call), key=lambda span: span.start_time)
    assert [span.attributes["http.response.status_code"] for span in attempts] == [503, 200]
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in attempts[0].attributes
    assert attempts[1].attributes["http.request.resend_count"] == 1
    assert [event.name for event in call.events] == ["pyservice.attempt_failed", "pyservice.retry"]
    assert call.events[1].attributes["pyservice.backoff_s"] >= 0
    assert call.attributes["pyservice.attempts"] == 2
    assert len(set(seen)) == 2


def test_without_attempt_spans_the_call_span_is_sent(otel):
    client, seen = make_client(otel, attempt_spans=False)
    client.get_thing(id="a")
    (call,) = otel.spans()
    context = call.context
    assert seen == [f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"]


def test_a_whitelisted_exception_marks_the_client_span_as_an_error(otel):
    client, _ = make_client(otel)
    with pytest.raises(client.exceptions.NoSuchThing):
        client.get_thing(id="missing")
    call = next(span for span in otel.spans() if span.parent is None)
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "NoSuchThing"
    assert not [event for event in call.events if event.name == "exception"]


def test_a_transport_error_records_the_exception(otel):
    api = {**API, "endpoint": {"host": "127.0.0.1", "port": 9}, "retries": 0}
    client = pyservice.Client(**api, plugins={"otel": otel.config()})
    with pytest.raises(pyservice.TransportError):
        client.get_thing(id="a")
    call = next(span for span in otel.spans() if span.parent is None)
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "TransportError"
    assert [event.name for event in call.events] == ["pyservice.attempt_failed", "exception"]


def test_a_call_made_from_a_handler_is_a_child_of_the_server_span(otel):
    backend = pyservice.Service(name="backend", operations=["lookup"])
    backend.operation("lookup")(lambda request, response, context: None)
    backend_client = pyservice.testing.client_for(
        backend, {"name": "backend", "operations": ["lookup"], "plugins": {"otel": otel.config()}}
    )
    front = pyservice.Service(name="front", operations=["get"], plugins={"otel": otel.config()})

    @front.operation("get")
    def get(request, response, context):
        backend_client.lookup()

    pyservice.testing.client_for(front, {"name": "front", "operations": ["get"]}).get()
    spans = {span.name: span for span in otel.spans() if span.parent is None or span.kind is SpanKind.SERVER}
    server = spans["front/get"]
    call = next(span for span in otel.spans() if span.name == "backend/lookup" and span.parent == server.context)
    assert call.context.trace_id == server.context.trace_id


def test_the_client_records_its_metrics(otel):
    client, _ = make_client(otel)
    client.get_thing(id="a")
    (duration,) = otel.points("rpc.client.call.duration")
    assert duration.count == 1
    assert duration.attributes["rpc.method"] == "things/get_thing"
    assert duration.attributes["rpc.response.status_code"] == "200"
    assert duration.attributes["server.address"] == "127.0.0.1"
    (request_size,) = otel.points("rpc.client.request.size")
    assert request_size.sum == len(b'{"id":"a"}')
    (active,) = otel.points("rpc.client.active_requests")
    assert active.value == 0
