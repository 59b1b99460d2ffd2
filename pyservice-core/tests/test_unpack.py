"""Unpacking handlers: plain functions of the request's fields."""

from __future__ import annotations

import pyservice
import pytest
from pyservice.testing import client_for


def greeter(**operation_options):
    service = pyservice.Service(operations={"greet": operation_options}, debug=True)

    @service.operation("greet", unpack=True)
    def greet(name, city="Paris"):
        return {"greeting": f"hello {name} from {city}"}

    return service


def test_fields_become_keyword_arguments_and_the_mapping_the_response():
    client = client_for(greeter())
    assert client.greet(name="Ada").greeting == "hello Ada from Paris"
    assert client.greet(name="Ada", city="Oslo").greeting == "hello Ada from Oslo"


def test_the_decorated_function_stays_callable_as_written():
    service = pyservice.Service(operations=["greet"])

    @service.operation(unpack=True)
    def greet(name):
        return {"greeting": name}

    assert greet("direct") == {"greeting": "direct"}


def test_a_missing_required_field_is_a_400_naming_it(wsgi):
    answer = wsgi(greeter(), "/api/v1/greet", b'{"city": "Rome"}')
    assert answer.status == 400
    assert answer.error["name"] == "InvalidRequest"
    assert answer.error["errors"] == [{"path": "name", "expected": "a value", "got": "nothing (the field is missing)"}]


def test_an_unknown_field_is_a_400_naming_it(wsgi):
    answer = wsgi(greeter(), "/api/v1/greet", b'{"name": "Ada", "colour": "red"}')
    assert answer.status == 400
    assert answer.error["errors"] == [
        {"path": "colour", "expected": "no such field (known: name, city)", "got": "a value"}
    ]


def test_unknown_fields_are_dropped_when_the_operation_ignores_them():
    client = client_for(greeter(unknown_fields="ignore"))
    assert client.greet(name="Ada", colour="red").greeting == "hello Ada from Paris"


def test_a_parameter_named_context_receives_the_context():
    service = pyservice.Service(operations=["whoami"])

    @service.operation(unpack=True)
    def whoami(context):
        return {"operation": context.operation, "remote": context.remote_addr}

    assert client_for(service).whoami() == {"operation": "whoami", "remote": "127.0.0.1"}


def test_a_field_named_context_is_not_taken_for_the_context(wsgi):
    service = pyservice.Service(operations=["op"])

    @service.operation(unpack=True)
    def op(context):
        return {}

    assert wsgi(service, "/api/v1/op", b'{"context": 1}').status == 400


def test_var_keyword_receives_every_field():
    service = pyservice.Service(operations=["echo"])

    @service.operation(unpack=True)
    def echo(prefix="", **fields):
        return {key: f"{prefix}{value}" for key, value in fields.items()}

    assert client_for(service).echo(prefix="> ", a=1, b="x") == {"a": "> 1", "b": "> x"}


def test_none_answers_an_empty_response():
    service = pyservice.Service(operations=["ping"])
    service.operation("ping", unpack=True)(lambda: None)
    assert client_for(service).ping() == {}


def test_a_return_value_that_is_not_a_mapping_is_an_internal_error_saying_so(wsgi):
    service = pyservice.Service(operations=["op"], debug=True)
    service.operation("op", unpack=True)(lambda: ["not", "a", "mapping"])
    answer = wsgi(service, "/api/v1/op")
    assert answer.status == 500
    assert answer.error["name"] == "TypeError"
    assert "must return a mapping of response fields or None, not list" in answer.error["message"]


def test_whitelisted_exceptions_reach_the_client_by_name():
    service = pyservice.Service(operations=["get"], exceptions={"DoesNotExist": {"status": 404}})

    @service.operation(unpack=True)
    def get(id):
        raise service.exceptions.DoesNotExist(f"no item {id}")

    with pytest.raises(service.exceptions.DoesNotExist, match="no item 3"):
        client_for(service).get(id=3)


def test_declared_input_is_checked_first_and_fills_defaults():
    service = pyservice.Service(
        operations={"greet": {"input": {"name": "string", "times": {"type": "integer", "default": 2}}}}
    )

    @service.operation(unpack=True)
    def greet(name, times):
        return {"greeting": " ".join([name] * times)}

    client = client_for(service)
    assert client.greet(name="hi").greeting == "hi hi"
    with pytest.raises(pyservice.InvalidRequest) as raised:
        client.greet(name=1)
    assert raised.value.errors == [{"path": "name", "expected": "string", "got": "integer 1"}]


@pytest.mark.parametrize(
    ("input_spec", "function", "key", "words"),
    [
        ({"name": "string", "age": "integer"}, lambda name: None, "operations.op.input.age", "no such parameter"),
        ({"name": "string"}, lambda name, age: None, "operations.op.input", "requires 'age'"),
        (
            {"name": {"type": "string", "required": False}},
            lambda name: None,
            "operations.op.input.name",
            "optional without a default",
        ),
    ],
)
def test_a_function_that_does_not_fit_the_declared_input_fails_at_registration(input_spec, function, key, words):
    service = pyservice.Service(operations={"op": {"input": input_spec}})
    with pytest.raises(pyservice.ApiError) as raised:
        service.operation("op", unpack=True)(function)
    assert raised.value.key == key
    assert words in str(raised.value)


def test_positional_only_parameters_are_refused_at_registration():
    service = pyservice.Service(operations=["op"])

    def op(name, /):
        return {}

    with pytest.raises(pyservice.ApiError, match="positional-only"):
        service.operation(unpack=True)(op)


def test_both_styles_live_in_one_service():
    service = pyservice.Service(operations=["plain", "unpacked"])

    @service.operation()
    def plain(request, response, context):
        response.style = "request, response, context"

    @service.operation(unpack=True)
    def unpacked():
        return {"style": "fields"}

    client = client_for(service)
    assert client.plain().style == "request, response, context"
    assert client.unpacked().style == "fields"


def test_operation_hooks_see_the_request_and_the_response():
    service = greeter()
    seen = []

    @service.plugin(scope="operation")
    def audit(request, response, context):
        context.process_request()
        seen.append((dict(request), dict(response)))

    client_for(service).greet(name="Ada")
    assert seen == [({"name": "Ada"}, {"greeting": "hello Ada from Paris"})]
