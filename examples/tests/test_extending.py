"""The extension-point examples of examples/extending/ do what their docstrings say."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pyservice
import pytest
import requests
from pyservice.testing import LiveServer, client_for

EXAMPLE = Path(__file__).resolve().parents[1] / "extending"


@pytest.fixture(scope="module")
def load():
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLE))


# -- several versions ----------------------------------------------------------


def test_each_client_is_pinned_to_its_version(load):
    versions = load("versions")
    v1 = client_for(versions.app, versions.V1)
    v2 = client_for(versions.app, versions.V2)
    assert v1.greet(name="Ada").greeting == "hello Ada"
    assert v2.greet(name="Ada", polite=True).greeting == "Good day, Ada."
    assert v1.shout(text="hi").text == "HI!"
    assert v1.stats().version == "v1"
    assert v2.stats().version == "v2"


def test_an_operation_dropped_in_v2_is_the_protocols_404(load):
    versions = load("versions")
    v2_with_shout = {**versions.V2, "operations": {**versions.V2["operations"], "shout": {}}}
    with pytest.raises(pyservice.ServiceError) as raised:
        client_for(versions.app, v2_with_shout).shout(text="hi")
    assert (raised.value.status, raised.value.name) == (404, "UnknownOperation")


def test_each_version_checks_its_own_input(load):
    versions = load("versions")
    with pytest.raises(pyservice.InvalidRequest) as raised:
        client_for(versions.app, versions.V2).greet(name="Ada", polite="yes")
    assert raised.value.errors == [{"path": "polite", "expected": "boolean", "got": "string 'yes'"}]


def test_a_whitelisted_exception_of_an_unpacking_handler_reaches_the_client(load):
    versions = load("versions")
    client = client_for(versions.app, versions.V1)
    with pytest.raises(client.exceptions.Silent):
        client.shout(text="")


def test_the_versions_are_served_by_pyservice_serve(load):
    versions = load("versions")
    with LiveServer("versions:app", workers=1, cwd=EXAMPLE) as server:
        for api, expected in ((versions.V1, "v1"), (versions.V2, "v2")):
            with pyservice.Client(**{**api, "endpoint": {"port": server.port}}) as client:
                assert client.stats().version == expected
        with pyservice.Client(**{**versions.V1, "version": "v3", "endpoint": {"port": server.port}}) as client:
            with pytest.raises(pyservice.ServiceError) as raised:
                client.stats()
            assert raised.value.status == 404


def test_the_group_serves_one_valid_document_for_both_versions(load):
    from openapi_spec_validator import validate

    with LiveServer("versions:app", workers=1, cwd=EXAMPLE) as server:
        document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    validate(document)
    assert document["servers"] == [{"url": server.url}]
    ids = {path: item["post"]["operationId"] for path, item in document["paths"].items() if "post" in item}
    assert ids == {
        "/api/v1/greet": "v1_greet",
        "/api/v1/shout": "v1_shout",
        "/api/v1/stats": "v1_stats",
        "/api/v2/greet": "v2_greet",
        "/api/v2/stats": "v2_stats",
    }


# -- subclassing -----------------------------------------------------------------


def test_the_service_subclass_adds_its_default_hooks(load):
    subclassing = load("subclassing")
    client = client_for(subclassing.service)
    seen = {}

    @client.plugin(scope="attempt")
    def headers(context):
        context.process_request()
        seen.update(context.http_response.headers)

    client.put_item(name="teapot")
    assert len(seen["X-Request-Id"]) == 32
    assert seen["Server-Timing"].startswith("app;dur=")


def test_the_default_readiness_check_sees_missing_handlers(load, wsgi_get):
    subclassing = load("subclassing")
    assert wsgi_get(subclassing.service, "/health/ready") == (200, {"status": "ready", "checks": {"handlers": "ready"}})
    bare = subclassing.AppService(**subclassing.API)
    assert wsgi_get(bare, "/health/ready")[1]["checks"] == {"handlers": "no handler for get_item, put_item"}


def test_the_client_subclass_adds_a_convenience_method(load):
    subclassing = load("subclassing")
    client = client_for(subclassing.service)
    created = client.put_item(name="teapot")
    items = subclassing.ItemsClient(session=client.session, **subclassing.API)
    assert items.get_or_none(created.id) == {"id": created.id, "name": "teapot"}
    assert items.get_or_none("nope") is None


def test_the_chain_command_shows_the_subclass_hooks():
    result = subprocess.run(
        [sys.executable, "-m", "pyservice", "chain", "subclassing:service", "get_item"],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines()[:3] == [
        "service items v1 get_item",
        "  request   hook AppService._request_id",
        "  request   hook AppService._server_timing",
    ]


# -- metadata read by a plugin ---------------------------------------------------------


def test_a_plugin_reads_its_metadata_from_the_api(load):
    metadata = load("metadata")
    client = client_for(metadata.service, {"operations": ["charge", "refund"]})
    owners = []

    @client.plugin(scope="attempt")
    def header(context):
        context.process_request()
        owners.append(context.http_response.headers["X-Owner"])

    client.charge(amount=3)
    client.refund(amount=1)
    assert owners == ["alice", "payments"]


def test_metadata_keys_are_checked_at_start_up(load):
    metadata = load("metadata")
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(**{**metadata.API, "team": 7}, available_plugins=[metadata.Ownership])
    assert raised.value.key == "team"
    without_team = {key: value for key, value in metadata.API.items() if key != "team"}
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(**without_team, available_plugins=[metadata.Ownership])
    assert raised.value.key == "operations.refund.owner"


def test_metadata_keys_are_unknown_without_their_plugin(load):
    metadata = load("metadata")
    with pytest.raises(pyservice.ApiError, match="unknown key"):
        pyservice.Service(**{**metadata.API, "plugins": {}})


@pytest.fixture
def wsgi_get():
    import io

    def get(app, path):
        started = {}
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
        body = b"".join(app(environ, lambda status, headers, exc_info=None: started.update(status=status)))
        return int(started["status"].split()[0]), pyservice._wire.loads(body)

    return get
