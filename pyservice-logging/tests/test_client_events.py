from __future__ import annotations

import re

import pyservice
import pytest
from pyservice.testing import client_for, free_port

from .conftest import PLUGINS, client, make_api, make_service

TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def test_client_success_event(lines):
    service = make_service(make_api())
    client(service).get_item(id="7")
    [event] = lines.calls("client")
    assert (event["outcome"], event["status"], event["attempts"], event["retries"]) == ("ok", 200, 1, None)
    assert event["peer"] == "http://127.0.0.1:8080"
    assert event["request_size"] == len(b'{"id":"7"}')
    assert event["response_size"] > 0


def test_client_event_for_a_whitelisted_exception(lines):
    service = make_service(make_api())
    with pytest.raises(pyservice.exceptions.DoesNotExist):
        client(service).get_item(id="missing")
    [event] = lines.calls("client")
    assert (event["outcome"], event["error"], event["status"]) == ("exception", "DoesNotExist", 404)


def test_client_event_for_an_internal_error_has_no_traceback(lines):
    service = make_service(make_api())
    with pytest.raises(pyservice.ServiceError):
        client(service).get_item(id="boom")
    [event] = lines.calls("client")
    assert (event["outcome"], event["error"], event["status"], event["level"]) == (
        "internal_error",
        "InternalError",
        500,
        "error",
    )
    assert "exception" not in event


def test_client_transport_error_with_retries(lines):
    port = free_port()  # nothing listens there
    api = make_api(endpoint={"port": port}, retries=2, timeout=2.0)
    with pyservice.Client(available_plugins=PLUGINS, **api) as caller, pytest.raises(pyservice.TransportError):
        caller.get_item(id="7")
    [event] = lines.calls("client")
    assert (event["outcome"], event["error"], event["status"], event["attempts"]) == (
        "transport_error",
        "TransportError",
        None,
        3,
    )
    assert event["retries"] == [{"attempt": 1, "error": "TransportError"}, {"attempt": 2, "error": "TransportError"}]
    assert str(port) in event["detail"]


def test_client_retry_after_503_is_in_the_event(lines):
    service = make_service(make_api())
    answered = []

    def flaky(environ, start_response):
        if not answered:
            answered.append(503)
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"error": {"kind": "protocol", "name": "Unavailable", "message": "later"}}']
        return service(environ, start_response)

    caller = client_for(flaky, service.api.raw, available_plugins=PLUGINS)
    assert caller.get_item(id="7").item["id"] == "7"
    [event] = lines.calls("client")
    assert (event["outcome"], event["attempts"]) == ("ok", 2)
    assert event["retries"] == [{"attempt": 1, "status": 503}]


def test_client_sends_request_id_and_a_new_span_per_attempt():
    seen = []

    def echo(environ, start_response):
        seen.append((environ.get("HTTP_X_REQUEST_ID"), environ.get("HTTP_TRACEPARENT")))
        if len(seen) == 1:
            start_response("502 Bad Gateway", [("Content-Type", "application/json")])
            return [b"{}"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    caller = client_for(echo, make_api(), available_plugins=PLUGINS)
    caller.get_item(id="7")
    [(id1, tp1), (id2, tp2)] = seen
    assert id1 == id2
    assert TRACEPARENT.fullmatch(tp1)
    assert TRACEPARENT.fullmatch(tp2)
    assert tp1.split("-")[1] == tp2.split("-")[1] == id1
    assert tp1.split("-")[2] != tp2.split("-")[2]


def test_explicit_request_id_header_is_sent_once(lines):
    seen = []

    def echo(environ, start_response):
        seen.append({key: value for key, value in environ.items() if "REQUEST_ID" in key.upper()})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    caller = client_for(echo, make_api(), available_plugins=PLUGINS)
    caller.call("get_item", {"id": "7"}, headers={"x-request-id": "mine-1"})
    assert seen == [{"HTTP_X_REQUEST_ID": "mine-1"}]
    [event] = lines.calls("client")
    assert event["request_id"] == "mine-1"


def test_service_calling_a_service_passes_the_request_id_on(lines):
    back = make_service(make_api())
    back_client = client(back)
    front = pyservice.Service(available_plugins=PLUGINS, **make_api())

    @front.operation("get_item")
    def get_item(request, response, context):
        response.item = back_client.get_item(id=request.id).item

    client(front).call("get_item", {"id": "7"}, headers={"X-Request-ID": "chain-1"})
    served = lines.calls("service")
    called = lines.calls("client")
    assert len(served) == 2
    assert len(called) == 2
    assert {event["request_id"] for event in served + called} == {"chain-1"}
    assert len({event["trace_id"] for event in served + called}) == 1
    # The back service's parent is the front's outgoing span, whose parent is the front's own span.
    back_event, front_event = served
    inner_call = called[0]
    assert back_event["parent_id"] == inner_call["span_id"]
    assert inner_call["parent_id"] == front_event["span_id"]


def test_client_event_carries_the_circuit_breaker_state(lines):
    api = make_api(endpoint={"port": free_port()}, retries=0, timeout=1.0, circuit_breaker={"failures": 1, "reset": 30})
    with pyservice.Client(available_plugins=PLUGINS, **api) as caller:
        with pytest.raises(pyservice.TransportError):
            caller.get_item(id="1")
        with pytest.raises(pyservice.CircuitOpen):
            caller.get_item(id="2")
    first, second = lines.calls("client")
    assert first["circuit"] == "opened"
    assert (second["circuit"], second["error"], second["attempts"]) == ("open", "CircuitOpen", 0)


def test_a_client_event_that_cannot_be_built_leaves_the_answer_alone(lines, monkeypatch):
    service = make_service(make_api())  # its own event leaves bodies out
    caller = client(service, make_api({"logging": {"log_bodies": True}}))
    plugin = next(plugin for plugin in caller.plugins if plugin.name == "logging")

    def broken(fields, limit):
        raise ValueError("cannot redact")

    monkeypatch.setattr(plugin, "_body", broken)
    assert caller.get_item(id="7").item == {"id": "7", "name": "teapot"}
    [event] = lines.calls("client")
    assert (event["outcome"], event["level"]) == ("ok", "error")
    assert event["detail"] == "the call event could not be written: ValueError: cannot redact"
