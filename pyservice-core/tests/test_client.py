"""The Client: calls, exceptions by name, errors that say what happened, retries, hooks."""

from __future__ import annotations

import socket
import threading

import pyservice
import pytest
import requests
from pyservice.testing import client_for, free_port


def test_a_call_returns_the_response_fields(items_service):
    client = client_for(items_service)
    created = client.put_item(item={"name": "teapot"})
    assert isinstance(created, pyservice.Container)
    fetched = client.get_item(id=created.id)
    assert fetched.item == {"name": "teapot"}
    assert fetched["item"] == {"name": "teapot"}
    assert fetched.missing is None


def test_call_by_name_takes_a_mapping(items_service):
    client = client_for(items_service)
    created = client.call("put_item", {"item": 1})
    assert client.call("get_item", {"id": created.id}).item == 1


def test_whitelisted_exceptions_are_raised_by_name(items_service):
    client = client_for(items_service)
    with pytest.raises(client.exceptions.DoesNotExist) as raised:
        client.get_item(id="404")
    assert raised.value.args == ("No item with id 404",)
    # The same class on both sides, and importable by name.
    assert client.exceptions.DoesNotExist is items_service.exceptions.DoesNotExist
    from pyservice.exceptions import DoesNotExist

    assert raised.type is DoesNotExist
    assert issubclass(DoesNotExist, pyservice.ServiceException)


def test_an_exception_the_client_does_not_whitelist_is_a_service_error(items_service, items_api):
    client = client_for(items_service, {**items_api, "exceptions": []})
    with pytest.raises(pyservice.ServiceError) as raised:
        client.get_item(id="404")
    assert (raised.value.status, raised.value.kind, raised.value.name) == (400, "exception", "DoesNotExist")


def test_an_internal_error_is_a_service_error_without_detail():
    service = pyservice.Service(operations=["get"])

    @service.operation()
    def get(request, response, context):
        raise RuntimeError("hunter2")

    with pytest.raises(pyservice.ServiceError) as raised:
        client_for(service).get()
    error = raised.value
    assert (error.status, error.kind, error.name, error.operation) == (500, "internal", "InternalError", "get")
    assert "hunter2" not in str(error)


def test_an_operation_the_service_lacks_is_a_protocol_service_error(items_service, items_api):
    client = client_for(items_service, {**items_api, "operations": ["get_item", "put_item", "delete_item"]})
    with pytest.raises(pyservice.ServiceError) as raised:
        client.delete_item(id="1")
    assert (raised.value.status, raised.value.kind, raised.value.name) == (404, "protocol", "UnknownOperation")


def test_an_undeclared_operation_is_an_attribute_error(items_service):
    client = client_for(items_service)
    with pytest.raises(AttributeError, match="delete_item"):
        client.delete_item()
    with pytest.raises(AttributeError, match="delete_item"):
        client.call("delete_item")


def html_proxy(status):
    def app(environ, start_response):
        start_response(f"{status} Whatever", [("Content-Type", "text/html")])
        return [b"<html>Bad Gateway</html>"]

    return app


@pytest.mark.parametrize("status", [200, 404, 502])
def test_an_answer_that_is_not_the_protocol_is_an_invalid_response(status):
    client = client_for(html_proxy(status), {"operations": ["get"]})
    with pytest.raises(pyservice.InvalidResponse) as raised:
        client.get()
    assert raised.value.status == status
    assert "<html>Bad Gateway" in str(raised.value)


def test_an_error_without_the_shape_is_an_invalid_response():
    def app(environ, start_response):
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [b'{"detail": "no"}']

    with pytest.raises(pyservice.InvalidResponse, match="error shape"):
        client_for(app, {"operations": ["get"]}).get()


def test_an_answer_over_the_size_limit_is_refused():
    service = pyservice.Service(operations=["get"])

    @service.operation()
    def get(request, response, context):
        response.blob = "x" * 5000

    session = requests.Session()
    session.mount("http://", pyservice.testing.WSGITransport(service))
    client = pyservice.Client(session=session, max_response_size=1000, operations=["get"])
    with pytest.raises(pyservice.InvalidResponse, match="larger than 1000 bytes"):
        client.get()


def test_an_answer_whose_length_is_not_ascii_digits_is_still_read():
    # "²" passes str.isdigit() but not int(); the answer is read without trusting it.
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "\xb2")])
        return [b'{"ok": true}']

    assert client_for(app, {"operations": ["get"]}).get().ok is True


def test_a_closed_port_is_a_transport_error():
    client = pyservice.Client(operations=["get"], endpoint={"port": free_port()}, timeout=2)
    with pytest.raises(pyservice.TransportError) as raised:
        client.get()
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)
    assert raised.value.operation == "get"


def silent_server():
    """A socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def test_no_answer_within_the_timeout_is_a_call_timeout():
    listener = silent_server()
    try:
        client = pyservice.Client(operations=["get"], endpoint={"port": listener.getsockname()[1]}, timeout=0.2)
        with pytest.raises(pyservice.CallTimeout):
            client.get()
        with pytest.raises(pyservice.CallTimeout):
            client.call("get", timeout=0.1)
    finally:
        listener.close()


def attempts_against_closed_port(operations, **call_options):
    client = pyservice.Client(operations=operations, endpoint={"port": free_port()}, retries=2, timeout=1)
    attempts = []

    @client.plugin(scope="attempt")
    def count(context):
        attempts.append(context.attempt)
        context.process_request()

    with pytest.raises(pyservice.TransportError):
        client.call("op", **call_options)
    return attempts


def test_a_non_idempotent_call_is_never_retried():
    assert attempts_against_closed_port(["op"]) == [1]


def test_an_idempotent_call_is_retried():
    assert attempts_against_closed_port({"op": {"idempotent": True}}) == [1, 2, 3]


def test_an_idempotency_key_makes_a_call_retryable_and_is_sent():
    assert attempts_against_closed_port(["op"], idempotency_key="k-1") == [1, 2, 3]


def test_an_idempotent_call_is_retried_after_503_then_succeeds():
    answers = iter(["503 Service Unavailable", "503 Service Unavailable", "200 OK"])
    seen_keys = []

    def flaky(environ, start_response):
        seen_keys.append(environ.get("HTTP_IDEMPOTENCY_KEY"))
        status = next(answers)
        start_response(status, [("Content-Type", "application/json")])
        return [b'{"ok": true}' if status.startswith("200") else b'{"error": {"kind": "exception", "name": "Busy"}}']

    client = client_for(flaky, {"operations": ["op"]})
    assert client.call("op", idempotency_key="abc").ok is True
    assert seen_keys == ["abc", "abc", "abc"]


def test_client_hooks_nest_request_operation_attempt():
    service = pyservice.Service(operations=["echo"])
    service.operation("echo")(lambda request, response, context: response.update(request))
    client = client_for(service)
    events = []

    @client.plugin(scope="request")
    def outer(context):
        events.append("request")
        context.process_request()
        events.append(f"request out {dict(context.response)}")

    @client.plugin(scope="operation")
    def middle(request, response, context):
        events.append(f"operation {dict(request)}")
        request.added = True
        context.process_request()

    @client.plugin(scope="attempt")
    def inner(context):
        events.append(f"attempt {context.attempt} {context.body}")
        context.headers["X-Signed"] = "yes"
        context.process_request()
        events.append(f"attempt status {context.status}")

    client.echo(a=1)
    assert events == [
        "request",
        "operation {'a': 1}",
        'attempt 1 b\'{"a":1,"added":true}\'',
        "attempt status 200",
        "request out {'a': 1, 'added': True}",
    ]


def test_a_client_hook_that_does_not_continue_answers_without_http():
    client = pyservice.Client(operations=["get"], endpoint={"port": free_port()})

    @client.plugin(scope="operation")
    def cached(request, response, context):
        response.value = "cached"

    assert client.get().value == "cached"


def test_headers_and_timeout_per_call(items_service):
    client = client_for(items_service)
    seen = {}

    @client.plugin(scope="attempt")
    def look(context):
        seen.update(header=context.headers.get("X-Tenant"), timeout=context.timeout)
        context.process_request()

    client.call("put_item", {"item": 1}, headers={"X-Tenant": "t1"}, timeout=(1, 4))
    assert seen == {"header": "t1", "timeout": pyservice.Timeout(1, 4)}


def test_the_operation_timeout_overrides_the_api_timeout():
    client = pyservice.Client(operations={"a": {"timeout": 3}, "b": {}}, timeout={"connect": 1, "read": 7})
    routes = client.compile()
    assert routes["a"].timeout == pyservice.Timeout(3, 3)
    assert routes["b"].timeout == pyservice.Timeout(1, 7)


def test_one_client_is_safe_to_share_between_threads(items_service):
    client = client_for(items_service)
    errors = []

    def work(n):
        try:
            for i in range(50):
                created = client.put_item(item=[n, i])
                assert client.get_item(id=created.id).item == [n, i]
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_an_attempt_hook_can_ask_for_another_attempt_after_a_delay():
    answers = iter(["429 Too Many Requests", "429 Too Many Requests", "200 OK"])
    seen = []

    def limited(environ, start_response):
        status = next(answers)
        seen.append(environ.get("HTTP_X_ATTEMPT"))
        start_response(status, [("Content-Type", "application/json"), ("Retry-After", "0")])
        if status.startswith("429"):
            return [b'{"error": {"kind": "exception", "name": "RequestThrottled", "message": "", "args": []}}']
        return [b'{"ok": true}']

    # Not idempotent, and no api retries: only the hook's request sends it again.
    client = client_for(limited, {"operations": ["op"], "retries": 0, "exceptions": ["RequestThrottled"]})
    delays = []

    @client.plugin(scope="attempt")
    def wait_when_throttled(context):
        context.headers["X-Attempt"] = str(context.attempt)
        context.process_request()
        if context.status == 429 and context.attempt < 3:
            delays.append(float(context.http_response.headers["Retry-After"]))
            context.retry_after = 0.0

    assert client.op().ok is True
    assert seen == ["1", "2", "3"]
    assert delays == [0.0, 0.0]


def test_a_hook_that_stops_asking_gets_the_answer_raised():
    def limited(environ, start_response):
        start_response("429 Too Many Requests", [("Content-Type", "application/json")])
        return [b'{"error": {"kind": "exception", "name": "RequestThrottled", "message": "", "args": []}}']

    client = client_for(limited, {"operations": ["op"], "exceptions": {"RequestThrottled": {"status": 429}}})

    @client.plugin(scope="attempt")
    def twice(context):
        context.process_request()
        if context.attempt < 2:
            context.retry_after = 0.0

    with pytest.raises(client.exceptions.RequestThrottled):
        client.op()
