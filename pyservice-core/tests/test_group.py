"""Several versions of an api in one WSGI application."""

from __future__ import annotations

import pyservice
import pytest
from pyservice.testing import client_for

V1 = {"name": "people", "version": "v1", "operations": ["greet", "count"]}
V2 = {
    "name": "people",
    "version": "v2",
    "operations": {"greet": {"input": {"name": "string", "polite": {"type": "boolean", "default": False}}}},
}


def greet(request, response, context):
    prefix = "Good day" if request.polite else "hello"
    response.greeting = f"{prefix} {request.name} ({context.service.api.version})"


@pytest.fixture
def group():
    v1, v2 = pyservice.Service(**V1), pyservice.Service(**V2)
    for service in (v1, v2):
        service.operation("greet")(greet)  # one handler, shared
    v1.operation("count")(lambda request, response, context: response.update(count=2))
    return pyservice.ServiceGroup(v1, v2)


def test_each_client_is_pinned_to_its_version(group):
    v1 = client_for(group, V1)
    v2 = client_for(group, V2)
    assert v1.greet(name="Ada").greeting == "hello Ada (v1)"
    assert v2.greet(name="Ada", polite=True).greeting == "Good day Ada (v2)"
    assert v1.count().count == 2


def test_an_operation_a_version_does_not_serve_is_the_protocols_404(group):
    v2_with_count = {**V2, "operations": {**V2["operations"], "count": {}}}
    with pytest.raises(pyservice.ServiceError) as raised:
        client_for(group, v2_with_count).count()
    assert (raised.value.status, raised.value.kind, raised.value.name) == (404, "protocol", "UnknownOperation")


def test_a_version_that_is_not_served_is_the_protocols_404(group, wsgi):
    answer = wsgi(group, "/api/v3/greet")
    assert answer.status == 404
    assert (answer.error["kind"], answer.error["name"]) == ("protocol", "UnknownOperation")
    assert answer.error["message"] == (
        "no operation at the path '/api/v3/greet' (people v1 answers POST /api/v1/{operation} for greet, count; "
        "people v2 answers POST /api/v2/{operation} for greet)"
    )


def test_each_version_keeps_its_own_rules(group, wsgi):
    answer = wsgi(group, "/api/v2/greet", b'{"name": 1}')
    assert answer.error["name"] == "InvalidRequest"
    assert wsgi(group, "/api/v1/greet", b'{"name": 1}').status == 200
    assert wsgi(group, "/api/v1/greet", method="GET").status == 405


def test_two_services_claiming_one_path_are_refused_when_grouped():
    with pytest.raises(pyservice.ApiError, match="both claim the path '/api/v1/greet'"):
        pyservice.ServiceGroup(pyservice.Service(**V1), pyservice.Service(**V1))


def test_services_on_different_addresses_are_refused():
    other = pyservice.Service(**V2, endpoint={"port": 9999})
    with pytest.raises(pyservice.ApiError, match="share one address"):
        pyservice.ServiceGroup(pyservice.Service(**V1), other)


def test_a_group_needs_services():
    with pytest.raises(pyservice.ApiError):
        pyservice.ServiceGroup()
    with pytest.raises(pyservice.ApiError, match="groups Services"):
        pyservice.ServiceGroup(pyservice.Client(**V1))


def test_shared_health_paths_run_every_versions_checks(group, wsgi):
    v1, v2 = group.services
    v1.add_readiness_check("database", lambda: None)
    v2.add_readiness_check("database", lambda: "connection refused")
    answer = wsgi(group, "/health/ready", b"", method="GET")
    assert answer.status == 503
    assert answer.json() == {
        "status": "not ready",
        "checks": {"v1.database": "ready", "v2.database": "connection refused"},
    }
    assert wsgi(group, "/health/live", b"", method="GET").json() == {"status": "live"}


def test_the_group_describes_each_versions_chain(group):
    text = group.describe_chain()
    assert "service people v1 greet" in text
    assert "service people v2 greet" in text
    assert "check input {name: string, polite: boolean?}" in text


def test_the_groups_document_has_every_versions_paths(group):
    document = group.openapi()
    assert {"/api/v1/greet", "/api/v1/count", "/api/v2/greet"} <= set(document["paths"])
    assert document["info"] == {"title": "people", "version": "v1, v2"}
