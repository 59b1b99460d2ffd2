"""With pyservice-logging: one trace id in the call's log event and its span, whichever plugin is listed first."""

from __future__ import annotations

import json
import logging

import pyservice
import pyservice.testing
import pytest

pytest.importorskip("pyservice_logging")

API = {"name": "things", "operations": ["get_thing"]}


class Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(json.loads(record.getMessage()))


@pytest.fixture
def events():
    handler = Events()
    access = logging.getLogger("pyservice.access")
    access.addHandler(handler)
    yield handler.events
    access.removeHandler(handler)


def plugins(order, otel):
    return {name: otel.config() if name == "otel" else {"output": "stdlib"} for name in order}


@pytest.mark.parametrize("order", [["otel", "logging"], ["logging", "otel"]])
def test_the_service_logs_the_trace_id_of_the_server_span(order, otel, events):
    service = pyservice.Service(**API, plugins=plugins(order, otel))
    service.operation("get_thing")(lambda request, response, context: None)
    pyservice.testing.client_for(service, API).get_thing()
    span = otel.span("SERVER")
    (event,) = events
    assert event["trace_id"] == f"{span.context.trace_id:032x}"


def test_with_otel_first_the_service_logs_the_server_spans_own_id(otel, events):
    service = pyservice.Service(**API, plugins=plugins(["otel", "logging"], otel))
    service.operation("get_thing")(lambda request, response, context: None)
    pyservice.testing.client_for(service, API).get_thing()
    (event,) = events
    assert event["span_id"] == f"{otel.span('SERVER').context.span_id:016x}"


@pytest.mark.parametrize("order", [["otel", "logging"], ["logging", "otel"]])
def test_the_client_logs_the_trace_id_of_its_spans(order, otel, events):
    service = pyservice.Service(**API)
    service.operation("get_thing")(lambda request, response, context: None)
    client = pyservice.testing.client_for(service, {**API, "plugins": plugins(order, otel)})
    client.get_thing()
    trace_ids = {f"{span.context.trace_id:032x}" for span in otel.spans()}
    (event,) = events
    assert trace_ids == {event["trace_id"]}
