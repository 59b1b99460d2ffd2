"""What the core carries between plugins for them: the call's traceparent, and GET endpoints a plugin serves."""

from __future__ import annotations

import pyservice
import pyservice.testing
import pytest

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_call_has_no_traceparent_until_a_plugin_sets_one():
    service = pyservice.Service(operations=["greet"])
    seen = []

    @service.operation("greet")
    def greet(request, response, context):
        seen.append(context.traceparent)

    client = pyservice.testing.client_for(service)
    client.plugin("request")(lambda context: (seen.append(context.traceparent), context.process_request()))
    client.greet()
    assert seen == [None, None]


def test_the_traceparent_an_outer_hook_sets_is_seen_further_in_and_not_by_the_next_call():
    service = pyservice.Service(operations=["greet"])
    seen = []

    @service.plugin("request")
    def first(context):
        if context.traceparent is None and not seen:
            context.traceparent = TRACEPARENT
        context.process_request()

    @service.operation("greet")
    def greet(request, response, context):
        seen.append(context.traceparent)

    client = pyservice.testing.client_for(service)
    client.greet()
    client.greet()
    assert seen == [TRACEPARENT, None]


def test_a_client_attempt_hook_sees_the_traceparent_of_the_call():
    service = pyservice.Service(operations=["greet"])
    service.operation("greet")(lambda request, response, context: None)
    client = pyservice.testing.client_for(service)
    seen = []

    @client.plugin("request")
    def first(context):
        context.traceparent = TRACEPARENT
        context.process_request()

    @client.plugin("attempt")
    def attempt(context):
        seen.append(context.traceparent)
        context.process_request()

    client.greet()
    assert seen == [TRACEPARENT]


def metrics(environ, start_response):
    body = b"answered\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_a_get_endpoint_a_plugin_adds_is_served_outside_the_chain():
    service = pyservice.Service(operations=["greet"])
    service.add_get_endpoint("/metrics", metrics, owner="metrics-plugin")
    client = pyservice.testing.client_for(service)
    answer = client.session.get(client.api.endpoint.base_url + "/metrics")
    assert answer.status_code == 200
    assert answer.text == "answered\n"


def test_a_get_endpoint_answers_other_methods_405():
    service = pyservice.Service(operations=["greet"])
    service.add_get_endpoint("/metrics", metrics, owner="metrics-plugin")
    client = pyservice.testing.client_for(service)
    answer = client.session.post(client.api.endpoint.base_url + "/metrics", data=b"{}")
    assert answer.status_code == 405
    assert answer.json()["error"]["name"] == "MethodNotAllowed"


def test_a_get_endpoint_cannot_take_an_operation_path():
    service = pyservice.Service(operations=["greet"])
    path = service.api.endpoint.path_for(service.api.version, "greet")
    with pytest.raises(ValueError, match="already served by operation 'greet'"):
        service.add_get_endpoint(path, metrics, owner="metrics-plugin")


def test_a_get_endpoint_cannot_take_a_health_path():
    service = pyservice.Service(operations=["greet"])
    with pytest.raises(ValueError, match="already served by the core"):
        service.add_get_endpoint("/health/live", metrics, owner="metrics-plugin")


def test_two_owners_cannot_share_a_get_endpoint():
    service = pyservice.Service(operations=["greet"])
    service.add_get_endpoint("/metrics", metrics, owner="one")
    with pytest.raises(ValueError, match="'/metrics' is already served by one"):
        service.add_get_endpoint("/metrics", metrics, owner="two")


def test_a_get_endpoint_path_must_start_with_a_slash():
    service = pyservice.Service(operations=["greet"])
    with pytest.raises(ValueError, match="must start with '/'"):
        service.add_get_endpoint("metrics", metrics, owner="metrics-plugin")


def test_a_service_group_serves_the_get_endpoints_its_services_add():
    v1 = pyservice.Service(name="things", version="v1", operations=["greet"], openapi=None)
    v2 = pyservice.Service(name="things", version="v2", operations=["greet"], openapi=None)
    v1.add_get_endpoint("/metrics", metrics, owner="metrics-plugin")
    group = pyservice.ServiceGroup(v1, v2)
    client = pyservice.testing.client_for(group, {"name": "things", "version": "v1", "operations": ["greet"]})
    answer = client.session.get(client.api.endpoint.base_url + "/metrics")
    assert answer.status_code == 200
    assert answer.text == "answered\n"
