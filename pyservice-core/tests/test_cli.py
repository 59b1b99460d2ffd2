"""The pyservice command: chain, openapi, and serve with a ServiceGroup."""

from __future__ import annotations

import sys
from pathlib import Path

import pyservice
import pytest
from pyservice._cli import main
from pyservice.testing import LiveServer

APPS = Path(__file__).parent / "apps"


@pytest.fixture
def apps(monkeypatch):
    monkeypatch.chdir(APPS)
    monkeypatch.syspath_prepend(str(APPS))


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_chain_shows_input_checks_unpacking_and_debug_output_checks(apps, capsys):
    status, out, _ = run(capsys, "chain", "chain_app:service", "greet")
    assert status == 0
    assert out.splitlines() == [
        "service chained v1 greet",
        "  request   hook timing",
        "            decode request",
        "            check input {name: string, city: string?}",
        "            handler, unpacking name, city",
        "            check output {greeting: any} (debug)",
    ]


def test_chain_with_deadline_shows_the_deadline_step(apps, capsys):
    _, out, _ = run(capsys, "chain", "chain_app:service", "plain", "--deadline")
    assert out.splitlines() == [
        "service chained v1 plain",
        "  request   hook timing",
        "            decode request",
        "            refuse the call once its deadline passed (504 DeadlineExceeded)",
        "            handler",
    ]


def test_chain_accepts_a_client(apps, capsys):
    _, out, _ = run(capsys, "chain", "chain_app:client", "greet")
    assert out.splitlines() == [
        "client chained v1 greet",
        "            check input {name: string, city: string?}",
        "            encode request",
        "            HTTP exchange",
    ]


def test_chain_accepts_a_group(apps, capsys):
    _, out, _ = run(capsys, "chain", "chain_app:group", "plain")
    assert "service chained v1 plain" in out
    assert "service chained v2 plain" in out


def test_chain_of_an_unknown_operation_fails_listing_the_known_ones(apps, capsys):
    status, _, err = run(capsys, "chain", "chain_app:service", "nope")
    assert status == 2
    assert "has no operation 'nope' (known: greet, plain)" in err


def test_chain_of_something_else_says_what_it_found(apps):
    with pytest.raises(SystemExit, match=r"is a dict, not a pyservice\.Service, ServiceGroup or Client"):
        main(["chain", "chain_app:api"])


def test_a_route_has_a_readable_repr():
    sys.path.insert(0, str(APPS))
    try:
        import chain_app
    finally:
        sys.path.remove(str(APPS))
    routes = chain_app.service.compile()
    assert repr(routes["/api/v1/greet"]) == (
        "<_Route greet: request:timing > decode > check input > handler greet (unpacking) > check output > encode>"
    )
    assert repr(routes["/api/v1/plain"]) == "<_Route plain: request:timing > decode > handler plain > encode>"
    client_routes = chain_app.client.compile()
    assert repr(client_routes["greet"]) == "<_ClientRoute greet POST http://127.0.0.1:8080/api/v1/greet: _send>"


def test_serve_runs_a_service_group():
    with LiveServer("chain_app:group", workers=1, cwd=APPS) as server:
        for version in ("v1", "v2"):
            client = pyservice.Client(operations=["plain"], version=version, endpoint={"port": server.port})
            assert client.plain().version == version
        client = pyservice.Client(operations=["plain"], version="v3", endpoint={"port": server.port})
        with pytest.raises(pyservice.ServiceError) as raised:
            client.plain()
        assert raised.value.name == "UnknownOperation"


def test_chain_prints_one_line_per_hook_without_config_by_default(apps, capsys):
    status, out, _ = run(capsys, "chain", "plugged_app:service")
    assert status == 0
    assert out.splitlines() == [
        "service plugged v1 put",
        "  request   plugin limit",
        "            decode request",
        "            handler",
        "service plugged v1 get",
        "            decode request",
        "            handler",
    ]


def test_chain_verbose_adds_each_plugins_config_with_secrets_masked(apps, capsys):
    status, out, _ = run(capsys, "chain", "plugged_app:service", "put", "--verbose")
    assert status == 0
    assert out.splitlines()[1] == "  request   plugin limit {'limit': 5, 'key': '***'}"
