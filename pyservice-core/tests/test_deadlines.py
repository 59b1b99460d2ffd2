"""Deadlines: sent by the client, exposed on the context, enforced before the handler, passed on."""

from __future__ import annotations

import time

import pyservice
import pytest
from pyservice._deadline import current_deadline
from pyservice.testing import client_for, stub


def recording_service():
    service = pyservice.Service(operations=["op"])
    seen = {}

    @service.operation()
    def op(request, response, context):
        seen.update(
            header=context.headers.get("Pyservice-Timeout"),
            deadline=context.deadline,
            time_left=context.time_left(),
            contextvar=current_deadline.get(),
            module_time_left=pyservice.time_left(),
        )

    return service, seen


def test_without_the_header_there_is_no_deadline_and_no_contextvar(wsgi):
    service, seen = recording_service()
    assert wsgi(service, "/api/v1/op").status == 200
    assert seen == {"header": None, "deadline": None, "time_left": None, "contextvar": None, "module_time_left": None}


def test_the_header_sets_the_deadline_and_the_contextvar_while_the_call_runs(wsgi):
    service, seen = recording_service()
    before = time.monotonic()
    assert wsgi(service, "/api/v1/op", headers={"Pyservice-Timeout": "2.5"}).status == 200
    assert before + 2.5 <= seen["deadline"] <= time.monotonic() + 2.5
    assert 2.4 < seen["time_left"] <= 2.5
    assert 2.4 < seen["module_time_left"] <= 2.5
    assert seen["contextvar"] == seen["deadline"]
    assert current_deadline.get() is None  # reset once the call is over


def test_a_deadline_already_passed_is_refused_before_the_handler(wsgi):
    service, seen = recording_service()
    observed = []

    @service.plugin(scope="request")
    def observe(context):
        try:
            context.process_request()
        except pyservice.RequestRefused as exc:
            observed.append(exc.name)
            raise

    answer = wsgi(service, "/api/v1/op", headers={"Pyservice-Timeout": "0"})
    assert answer.status == 504
    assert answer.error["kind"] == "protocol"
    assert answer.error["name"] == "DeadlineExceeded"
    assert seen == {}
    assert observed == ["DeadlineExceeded"]


def test_a_deadline_that_passes_in_a_request_hook_is_refused_before_the_operation_hooks(wsgi):
    service, seen = recording_service()
    events = []

    @service.plugin(scope="request")
    def slow(context):
        time.sleep(0.06)
        context.process_request()

    @service.plugin(scope="operation")
    def inner(request, response, context):
        events.append("operation hook")
        context.process_request()

    answer = wsgi(service, "/api/v1/op", headers={"Pyservice-Timeout": "0.05"})
    assert answer.error["name"] == "DeadlineExceeded"
    assert (seen, events) == ({}, [])
    assert wsgi(service, "/api/v1/op", headers={"Pyservice-Timeout": "5"}).status == 200
    assert events == ["operation hook"]


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan", "1e3", "", "0x10"])
def test_a_malformed_timeout_is_a_400(wsgi, value):
    service, _seen = recording_service()
    answer = wsgi(service, "/api/v1/op", headers={"Pyservice-Timeout": value})
    assert answer.status == 400
    assert answer.error["name"] == "MalformedRequest"
    assert "Pyservice-Timeout" in answer.error["message"]


def test_the_client_sends_its_read_timeout():
    service, seen = recording_service()
    client = client_for(service, {"operations": ["op"], "timeout": {"connect": 1, "read": 7}})
    client.op()
    assert seen["header"] == "7.000"
    client.call("op", timeout=0.25)
    assert seen["header"] == "0.250"


def test_a_client_called_from_a_handler_passes_on_what_is_left():
    backend, seen = recording_service()
    backend_client = client_for(backend, {"operations": ["op"], "timeout": 30})
    frontend = pyservice.Service(operations=["front"])
    timeouts = []

    @backend_client.plugin(scope="attempt")
    def look(context):
        timeouts.append(context.timeout)
        context.process_request()

    @frontend.operation()
    def front(request, response, context):
        time.sleep(0.1)
        backend_client.op()

    client_for(frontend, {"operations": ["front"], "timeout": 2}).front()
    assert 1.7 < float(seen["header"]) < 1.91
    assert 1.7 < timeouts[0].read < 1.91
    assert timeouts[0].connect == timeouts[0].read


def test_a_call_made_after_the_inherited_deadline_is_a_call_timeout_without_sending():
    backend, seen = recording_service()
    backend_client = client_for(backend, {"operations": ["op"]})
    frontend = pyservice.Service(operations=["front"], exceptions=["CallTimeout"])
    raised = []

    @frontend.operation()
    def front(request, response, context):
        time.sleep(0.06)
        try:
            backend_client.op()
        except pyservice.CallTimeout as exc:
            raised.append(str(exc))

    client_for(frontend, {"operations": ["front"], "timeout": 0.05}).front()
    assert seen == {}
    assert "deadline" in raised[0]


def test_a_deadline_header_given_by_the_caller_is_kept():
    service, seen = recording_service()
    client_for(service).call("op", headers={"Pyservice-Timeout": "1.5"})
    assert seen["header"] == "1.5"


def test_the_stubbed_exchange_sees_the_header():
    service, _seen = recording_service()
    client = client_for(service, {"operations": ["op"], "timeout": 3})
    headers = []

    @client.plugin(scope="attempt")
    def look(context):
        headers.append(context.headers["Pyservice-Timeout"])
        context.process_request()

    with stub(client, "op", response={}):
        client.op()
    assert headers == ["3.000"]
