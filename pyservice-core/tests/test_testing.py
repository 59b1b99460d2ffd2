"""pyservice.testing's stub, and the pytest plugin's fixtures, as a user's test suite sees them."""

from __future__ import annotations

import pyservice
import pytest
from pyservice.testing import client_for, stub

pytest_plugins = ["pytester"]


@pytest.fixture
def client():
    service = pyservice.Service(
        operations={"get_item": {"idempotent": True}, "put_item": {}}, exceptions={"DoesNotExist": {"status": 404}}
    )
    service.operation("get_item")(lambda request, response, context: response.update(source="service"))
    service.operation("put_item")(lambda request, response, context: response.update(source="service"))
    return client_for(service)


def test_a_stubbed_operation_answers_the_given_response_and_records_calls(client):
    with stub(client, "get_item", response={"source": "stub"}) as get_item:
        assert client.get_item(id=1) == {"source": "stub"}
        assert client.get_item(id=2).source == "stub"
    assert get_item.calls == [{"id": 1}, {"id": 2}]


def test_other_operations_and_the_time_after_are_untouched(client):
    with stub(client, "get_item", response={"source": "stub"}):
        assert client.put_item().source == "service"
    assert client.get_item().source == "service"


def test_a_stub_raises_what_it_is_given(client):
    with (
        stub(client, "get_item", raises=client.exceptions.DoesNotExist("gone")),
        pytest.raises(client.exceptions.DoesNotExist, match="gone"),
    ):
        client.get_item(id=1)


def test_a_stub_handler_answers_from_the_request(client):
    with stub(client, "get_item", handler=lambda request: {"echo": request.id}):
        assert client.get_item(id=7).echo == 7


def test_the_clients_hooks_still_run_around_a_stub(client):
    events = []

    @client.plugin(scope="request")
    def outer(context):
        events.append("request")
        context.process_request()

    @client.plugin(scope="operation")
    def middle(request, response, context):
        request.signed = True
        context.process_request()
        response.seen = True

    @client.plugin(scope="attempt")
    def inner(context):
        events.append(f"attempt {context.attempt}")
        context.process_request()
        events.append(f"status {context.status}")

    with stub(client, "get_item", response={"source": "stub"}) as get_item:
        assert client.get_item(id=1) == {"source": "stub", "seen": True}
    assert get_item.calls == [{"id": 1, "signed": True}]
    assert events == ["request", "attempt 1", "status 200"]


def test_a_stubbed_transport_failure_is_retried_for_an_idempotent_operation(client):
    failure = pyservice.TransportError("connection reset", operation="get_item")
    with stub(client, "get_item", raises=failure) as get_item, pytest.raises(pyservice.TransportError):
        client.get_item(id=1)
    assert len(get_item.calls) == 1 + client.api.retries


def test_a_stub_needs_a_declared_operation_and_one_answer(client):
    with pytest.raises(AttributeError, match="no operation 'nope'"), stub(client, "nope"):
        pass
    with pytest.raises(ValueError, match="one of"), stub(client, "get_item", response={}, raises=KeyError):
        pass


def test_the_chain_shows_a_stubbed_exchange(client):
    with stub(client, "get_item", response={}):
        assert "HTTP exchange, stubbed" in client.describe_chain("get_item")
    assert "stubbed" not in client.describe_chain("get_item")


def test_the_service_client_fixture_builds_in_process_clients_closed_after_the_test(pytester):
    pytester.makepyfile(
        """
        import pyservice

        closed = []

        def test_call(service_client):
            service = pyservice.Service(operations=["greet"])

            @service.operation(unpack=True)
            def greet(name):
                return {"greeting": "hello " + name}

            client = service_client(service)
            client.session.close = lambda: closed.append(True)
            assert client.greet(name="Ada").greeting == "hello Ada"

        def test_closed_afterwards():
            assert closed == [True]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_service_client_fixture_passes_client_options(pytester):
    pytester.makepyfile(
        """
        import pyservice
        import pytest

        def test_validate(service_client):
            service = pyservice.Service(operations={"op": {"input": ["a"]}})
            service.operation("op")(lambda request, response, context: None)
            with pytest.raises(pyservice.InvalidRequest):
                service_client(service, validate=True).op()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_live_server_fixture_serves_and_stops(pytester):
    pytester.makepyfile(
        app="""
        import pyservice

        service = pyservice.Service(operations=["ping"])
        service.operation("ping", unpack=True)(lambda: {"pong": True})
        """
    )
    pytester.makepyfile(
        """
        import pyservice

        servers = []

        def test_serve(live_server, pytester_dir):
            server = live_server("app:service", workers=1, cwd=pytester_dir)
            servers.append(server)
            client = pyservice.Client(operations=["ping"], endpoint={"port": server.port})
            assert client.ping().pong is True

        def test_stopped_afterwards():
            assert servers[0].process is None
        """
    )
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture
        def pytester_dir():
            return {str(pytester.path)!r}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
