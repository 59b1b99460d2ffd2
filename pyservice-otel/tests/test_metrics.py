from __future__ import annotations

import pyservice
import pyservice.testing
import pytest

API = {"name": "things", "operations": ["get_thing"], "exceptions": {"NoSuchThing": {"status": 404}}}


def make_service(otel, **config):
    service = pyservice.Service(**API, plugins={"otel": otel.config(**config)})
    in_flight = []

    @service.operation("get_thing")
    def get_thing(request, response, context):
        in_flight.extend(point.value for point in otel.points("rpc.server.active_requests"))
        if request.id == "missing":
            raise service.exceptions.NoSuchThing("no such thing")
        response.id = request.id

    return service, pyservice.testing.client_for(service, API), in_flight


def test_a_call_records_its_duration_under_the_rpc_conventions_name(otel):
    _, client, _ = make_service(otel)
    client.get_thing(id="a")
    client.get_thing(id="b")
    (point,) = otel.points("rpc.server.call.duration")
    assert point.count == 2
    assert point.sum > 0
    assert point.attributes == {
        "rpc.system.name": "pyservice",
        "rpc.system": "pyservice",
        "rpc.service": "things",
        "rpc.method": "things/get_thing",
        "rpc.response.status_code": "200",
    }
    assert point.explicit_bounds[:3] == (0.005, 0.01, 0.025)


def test_an_error_is_measured_with_its_status_and_error_type(otel):
    _, client, _ = make_service(otel)
    with pytest.raises(client.exceptions.NoSuchThing):
        client.get_thing(id="missing")
    (point,) = otel.points("rpc.server.call.duration")
    assert point.attributes["error.type"] == "NoSuchThing"
    assert point.attributes["rpc.response.status_code"] == "404"


def test_request_and_response_sizes_are_measured_in_bytes(otel):
    _, client, _ = make_service(otel)
    client.get_thing(id="abc")
    (request_size,) = otel.points("rpc.server.request.size")
    (response_size,) = otel.points("rpc.server.response.size")
    assert request_size.sum == len(b'{"id":"abc"}')
    assert response_size.sum == len(b'{"id":"abc"}')


def test_calls_in_flight_count_up_during_a_call_and_back_down_after(otel):
    _, client, in_flight = make_service(otel)
    client.get_thing(id="a")
    assert in_flight == [1]
    (point,) = otel.points("rpc.server.active_requests")
    assert point.value == 0


def test_metrics_can_be_switched_off_while_spans_stay(otel):
    _, client, _ = make_service(otel, metrics=False)
    client.get_thing(id="a")
    assert otel.points("rpc.server.call.duration") == []
    assert otel.span("SERVER")
