"""The OpenAPI 3.1 document: built from the api, valid, served, and true to the live service."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyservice
import pytest
import requests
from openapi_spec_validator import validate
from pyservice._cli import main
from pyservice.testing import LiveServer

APPS = Path(__file__).parent / "apps"


def typed_app():
    sys.path.insert(0, str(APPS))
    try:
        import typed_app
    finally:
        sys.path.remove(str(APPS))
    return typed_app


@pytest.fixture(scope="module")
def document():
    return typed_app().service.openapi()


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "typed", "version": "v1"}


def test_each_operation_is_a_post_with_its_request_and_response_schemas(document):
    greet = document["paths"]["/api/v1/greet"]["post"]
    assert greet["operationId"] == "greet"
    assert greet["summary"] == "Greet someone, a few times."
    request = greet["requestBody"]["content"]["application/json"]["schema"]
    assert request["required"] == ["name"]
    assert request["additionalProperties"] is False
    assert request["properties"]["name"] == {"type": "string", "description": "Who to greet."}
    assert request["properties"]["times"]["default"] == 1
    assert request["properties"]["tags"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert request["properties"]["address"]["properties"]["city"] == {"type": "string"}
    response = greet["responses"]["200"]["content"]["application/json"]["schema"]
    assert response["required"] == ["greeting", "tags"]


def test_unions_and_mappings_have_their_schemas(document):
    lookup = document["paths"]["/api/v1/lookup"]["post"]
    name = lookup["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["name"]
    assert name == {"type": ["string", "null"]}
    average = document["paths"]["/api/v1/average"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert average["properties"]["values"] == {"type": "object", "additionalProperties": {"type": "number"}}


def test_ignored_unknown_fields_leave_the_request_open(document):
    tally = document["paths"]["/api/v1/tally"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "additionalProperties" not in tally


def test_an_unpacking_handler_without_input_documents_its_parameters():
    service = pyservice.Service(operations=["greet"])

    @service.operation(unpack=True)
    def greet(name, city="Paris"):
        return {}

    schema = service.openapi()["paths"]["/api/v1/greet"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["schema"] == {
        "type": "object",
        "properties": {"name": {}, "city": {}},
        "required": ["name"],
        "additionalProperties": False,
    }


def test_each_operation_lists_its_exceptions_and_the_protocol_errors(document):
    responses = document["paths"]["/api/v1/lookup"]["post"]["responses"]
    assert {"kind": "exception", "name": "DoesNotExist"} in responses["404"]["x-pyservice-errors"]
    assert {"kind": "exception", "name": "Invalid"} in responses["422"]["x-pyservice-errors"]
    assert {"kind": "protocol", "name": "InvalidRequest"} in responses["400"]["x-pyservice-errors"]
    assert responses["500"]["x-pyservice-errors"] == [{"kind": "internal", "name": "InternalError"}]
    assert responses["504"]["x-pyservice-errors"] == [{"kind": "protocol", "name": "DeadlineExceeded"}]
    assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    # An operation's own exceptions are its own.
    assert "404" not in document["paths"]["/api/v1/greet"]["post"]["responses"]


def test_the_error_shape_is_a_component(document):
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["kind", "name", "message"]
    assert error["properties"]["kind"] == {"enum": ["exception", "protocol", "internal"]}


def test_an_operation_without_a_handler_documents_its_501():
    service = pyservice.Service(operations=["later"])
    responses = service.openapi()["paths"]["/api/v1/later"]["post"]["responses"]
    assert responses["501"]["x-pyservice-errors"] == [{"kind": "protocol", "name": "NotImplemented"}]


def test_the_health_endpoints_are_documented(document):
    assert document["paths"]["/health/live"]["get"]["responses"]["200"]
    assert set(document["paths"]["/health/ready"]["get"]["responses"]) == {"200", "503"}


def test_the_document_is_served_at_the_path_the_api_names(wsgi):
    app = typed_app().service
    answer = wsgi(app, "/openapi.json", b"", method="GET", headers={"Host": "api.example:9000"})
    assert answer.status == 200
    assert answer.json() == json.loads(json.dumps(app.openapi("http://api.example:9000")))
    head = wsgi(app, "/openapi.json", b"", method="HEAD", headers={"Host": "api.example:9000"})
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", answer.headers["Content-Length"])
    post = wsgi(app, "/openapi.json", b"{}")
    assert (post.status, post.headers["Allow"]) == (405, "GET, HEAD")


def test_the_document_is_not_served_by_default(wsgi):
    service = pyservice.Service(operations=["a"])
    assert wsgi(service, "/openapi.json", b"", method="GET").status == 404


def test_the_openapi_path_may_not_be_an_operations_path():
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations=["a"], openapi="/api/v1/a")
    assert raised.value.key == "openapi"


def test_the_command_prints_the_document(capsys, monkeypatch):
    monkeypatch.chdir(APPS)
    monkeypatch.syspath_prepend(str(APPS))
    assert main(["openapi", "typed_app:service"]) == 0
    printed = json.loads(capsys.readouterr().out)
    validate(printed)
    assert "/api/v1/greet" in printed["paths"]


def schemathesis_command() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return str(found)
    command = shutil.which("schemathesis")
    if command is None:
        pytest.fail("schemathesis is not installed: pip install 'pyservice-core[test]'")
    return command


def test_schemathesis_finds_no_500_and_no_answer_off_the_document(tmp_path):
    with LiveServer("typed_app:service", workers=2, cwd=APPS) as server:
        command = [
            schemathesis_command(), "run", f"{server.url}/openapi.json", "--url", server.url,
            "--checks", "all", "--max-examples", "40", "--seed", "1",
            "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
            "--workers", "1", "--no-color",
        ]  # fmt: skip
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout


def versions_app():
    folder = Path(__file__).parents[2] / "examples" / "extending"
    sys.path.insert(0, str(folder))
    try:
        import versions
    finally:
        sys.path.remove(str(folder))
    return versions


def test_a_groups_merged_document_is_valid_openapi():
    document = versions_app().app.openapi()
    validate(document)
    ids = [operation["operationId"] for item in document["paths"].values() for operation in item.values()]
    assert len(ids) == len(set(ids))


def test_operations_of_the_same_name_in_two_versions_get_ids_naming_their_version():
    paths = versions_app().app.openapi()["paths"]
    assert paths["/api/v1/greet"]["post"]["operationId"] == "v1_greet"
    assert paths["/api/v2/greet"]["post"]["operationId"] == "v2_greet"
    assert paths["/api/v1/shout"]["post"]["operationId"] == "v1_shout"
    assert paths["/api/v2/greet"]["post"]["tags"] == ["v2"]


def test_ids_that_do_not_clash_are_left_as_they_are():
    group = pyservice.ServiceGroup(
        pyservice.Service(version="v1", operations=["a"]), pyservice.Service(version="v2", operations=["b"])
    )
    paths = group.openapi()["paths"]
    assert (paths["/api/v1/a"]["post"]["operationId"], paths["/api/v2/b"]["post"]["operationId"]) == ("a", "b")


def test_two_apis_of_one_version_get_ids_naming_the_api_too():
    endpoint = {"path": "/{version}/{operation}"}
    one = pyservice.Service(name="people", version="v1", endpoint={"path": "/people/{operation}"}, operations=["get"])
    two = pyservice.Service(name="places", version="v1", endpoint=endpoint, operations=["get"])
    document = pyservice.ServiceGroup(one, two).openapi()
    validate(document)
    assert document["paths"]["/people/get"]["post"]["operationId"] == "people_v1_get"
    assert document["paths"]["/v1/get"]["post"]["operationId"] == "places_v1_get"


def test_a_group_serves_its_merged_document_at_the_path_its_versions_share(wsgi):
    v1 = pyservice.Service(version="v1", operations=["greet"], openapi="/openapi.json")
    v2 = pyservice.Service(version="v2", operations=["greet"], openapi="/openapi.json")
    group = pyservice.ServiceGroup(v1, v2)
    answer = wsgi(group, "/openapi.json", b"", method="GET", headers={"Host": "127.0.0.1:8123"})
    assert answer.status == 200
    document = answer.json()
    validate(document)
    assert {"/api/v1/greet", "/api/v2/greet"} <= set(document["paths"])
    assert document["servers"] == [{"url": "http://127.0.0.1:8123"}]


def test_a_version_with_its_own_document_path_serves_only_its_own(wsgi):
    v1 = pyservice.Service(version="v1", operations=["greet"], openapi="/v1/openapi.json")
    v2 = pyservice.Service(version="v2", operations=["greet"])
    group = pyservice.ServiceGroup(v1, v2)
    document = wsgi(group, "/v1/openapi.json", b"", method="GET").json()
    assert set(document["paths"]) == {"/api/v1/greet", "/health/live", "/health/ready"}


def test_the_document_path_may_not_be_another_versions_operation():
    v1 = pyservice.Service(version="v1", operations=["greet"], openapi="/api/v2/greet")
    v2 = pyservice.Service(version="v2", operations=["greet"])
    with pytest.raises(pyservice.ApiError, match="both claim the path '/api/v2/greet'"):
        pyservice.ServiceGroup(v1, v2)


def test_the_servers_entry_is_the_url_given():
    service = pyservice.Service(operations=["a"])
    assert service.openapi()["servers"] == [{"url": "http://127.0.0.1:8080"}]
    assert service.openapi("https://api.example")["servers"] == [{"url": "https://api.example"}]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:9001", "http://127.0.0.1:9001"),
        ("[::1]:9001", "http://[::1]:9001"),
        ("api.example", "http://api.example"),
        ("evil.example/path", "/"),
        ('x"><script>', "/"),
        ("", "/"),
    ],
)
def test_the_served_document_names_the_host_the_request_was_sent_to(wsgi, host, expected):
    service = pyservice.Service(operations=["a"], openapi="/openapi.json")
    headers = {"Host": host} if host else {}
    answer = wsgi(service, "/openapi.json", b"", method="GET", headers=headers)
    assert answer.json()["servers"] == [{"url": expected}]


def test_the_served_documents_kept_per_host_are_bounded(wsgi):
    service = pyservice.Service(operations=["a"], openapi="/openapi.json")
    for n in range(50):
        wsgi(service, "/openapi.json", b"", method="GET", headers={"Host": f"host{n}.example"})
    endpoint = service._get_endpoints["/openapi.json"]
    assert len(endpoint._bodies) <= endpoint.max_kept


def test_the_served_document_names_the_port_the_service_was_started_on():
    with LiveServer("typed_app:service", workers=1, cwd=APPS) as server:
        document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    assert document["servers"] == [{"url": server.url}]


def test_the_command_names_the_server_url_given(capsys, monkeypatch):
    monkeypatch.chdir(APPS)
    monkeypatch.syspath_prepend(str(APPS))
    assert main(["openapi", "typed_app:service", "--server-url", "https://greeter.example"]) == 0
    assert json.loads(capsys.readouterr().out)["servers"] == [{"url": "https://greeter.example"}]


def test_the_command_builds_the_server_url_from_host_and_port(capsys, monkeypatch):
    monkeypatch.chdir(APPS)
    monkeypatch.syspath_prepend(str(APPS))
    assert main(["openapi", "typed_app:service", "--host", "0.0.0.0", "--port", "9100"]) == 0
    assert json.loads(capsys.readouterr().out)["servers"] == [{"url": "http://0.0.0.0:9100"}]


def test_the_command_validates_a_groups_merged_document(capsys, monkeypatch):
    folder = Path(__file__).parents[2] / "examples" / "extending"
    monkeypatch.syspath_prepend(str(folder))
    assert main(["openapi", "versions:app"]) == 0
    validate(json.loads(capsys.readouterr().out))
