"""Declared input and output: the spec checked at start-up, requests checked before the handler."""

from __future__ import annotations

import pyservice
import pytest
from pyservice.testing import client_for

PERSON = {
    "name": "string",
    "age": {"type": "integer", "default": 30},
    "nickname": {"type": ["string", "null"], "required": False},
    "address": {"type": "structure", "fields": {"city": "string", "zip": {"type": "string", "required": False}}},
    "tags": {"type": "list", "items": "string", "default": []},
    "scores": {"type": "mapping", "values": "number", "required": False},
}


def person_service(**operation_options):
    options = {"input": PERSON, **operation_options}
    service = pyservice.Service(operations={"greet": options}, debug=True)
    seen = []

    @service.operation()
    def greet(request, response, context):
        seen.append(dict(request))
        response.greeting = f"hello {request.name}"

    return service, seen


def body(**fields):
    return pyservice._wire.dumps(fields)


def test_a_valid_request_reaches_the_handler_with_defaults_filled(wsgi):
    service, seen = person_service()
    answer = wsgi(service, "/api/v1/greet", body(name="Ada", address={"city": "Paris"}))
    assert answer.status == 200
    assert seen == [{"name": "Ada", "address": {"city": "Paris"}, "age": 30, "tags": []}]


def test_a_mutable_default_is_fresh_for_each_call(wsgi):
    service = pyservice.Service(operations={"add": {"input": {"tags": {"type": "list", "default": []}}}})

    @service.operation()
    def add(request, response, context):
        request.tags.append("x")
        response.tags = request.tags

    assert wsgi(service, "/api/v1/add").json() == {"tags": ["x"]}
    assert wsgi(service, "/api/v1/add").json() == {"tags": ["x"]}


def test_every_field_error_is_named_with_its_path(wsgi):
    service, seen = person_service()
    answer = wsgi(
        service,
        "/api/v1/greet",
        body(age="ten", address={"zip": 75}, tags=["a", 2], scores={"x": "high"}, colour="blue"),
    )
    assert answer.status == 400
    assert answer.error["kind"] == "protocol"
    assert answer.error["name"] == "InvalidRequest"
    assert answer.error["errors"] == [
        {"path": "name", "expected": "string", "got": "nothing (the field is missing)"},
        {"path": "age", "expected": "integer", "got": "string 'ten'"},
        {"path": "address.city", "expected": "string", "got": "nothing (the field is missing)"},
        {"path": "address.zip", "expected": "string", "got": "integer 75"},
        {"path": "tags[1]", "expected": "string", "got": "integer 2"},
        {"path": "scores.x", "expected": "number", "got": "string 'high'"},
        {
            "path": "colour",
            "expected": "no such field (known: name, age, nickname, address, tags, scores)",
            "got": "string 'blue'",
        },
    ]
    assert "7 field errors" in answer.error["message"]
    assert seen == []


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ("integer", True),
        ("integer", 1.5),
        ("integer", 2.0**64),
        ("number", False),
        ("number", "1"),
        ("string", None),
        ("boolean", 0),
        ("null", 0),
        ("list", {}),
        ("mapping", []),
        (["string", "null"], 1),
        ({"type": "structure", "fields": {"a": "any"}}, "a"),
    ],
)
def test_a_value_of_another_type_is_refused(wsgi, spec, value):
    service = pyservice.Service(operations={"op": {"input": {"field": spec}}})
    service.operation("op")(lambda request, response, context: None)
    answer = wsgi(service, "/api/v1/op", body(field=value))
    assert answer.status == 400, answer.body
    assert [error["path"] for error in answer.error["errors"]] == ["field"]


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ("integer", 3),
        ("integer", -(2**63)),
        ("integer", 2**64 - 1),
        ("number", 3),
        ("number", 2.5),
        ("boolean", False),
        ("null", None),
        ("any", [1, {"a": None}]),
        (["string", "null"], None),
        (["integer", "list"], [1, "x"]),
        ({"type": "list", "items": ["integer", "null"]}, [1, None]),
        ({"type": "mapping", "values": {"type": "list", "items": "integer"}}, {"a": [1], "b": []}),
    ],
)
def test_a_value_of_the_declared_type_is_accepted(wsgi, spec, value):
    service = pyservice.Service(operations={"op": {"input": {"field": spec}}})
    service.operation("op")(lambda request, response, context: response.update(request))
    answer = wsgi(service, "/api/v1/op", body(field=value))
    assert answer.status == 200, answer.body
    assert answer.json() == {"field": value}


def test_an_integral_number_is_an_integer_as_in_json(wsgi):
    spec = {
        "count": "integer",
        "either": ["integer", "string"],
        "ids": {"type": "list", "items": "integer"},
        "by_name": {"type": "mapping", "values": "integer"},
        "inner": {"fields": {"n": "integer"}},
        "ratio": ["number", "integer"],
    }
    service = pyservice.Service(operations={"op": {"input": spec}})
    seen = []
    service.operation("op")(lambda request, response, context: seen.append(dict(request)))
    fields = {"count": 3.0, "either": 4.0, "ids": [1.0, 2], "by_name": {"a": 5.0}, "inner": {"n": 6.0}, "ratio": 7.0}
    assert wsgi(service, "/api/v1/op", body(**fields)).status == 200
    assert seen == [{"count": 3, "either": 4, "ids": [1, 2], "by_name": {"a": 5}, "inner": {"n": 6}, "ratio": 7.0}]
    assert [type(seen[0][name]) for name in ("count", "either", "ratio")] == [int, int, float]
    assert type(seen[0]["ids"][0]) is int


def test_the_short_form_requires_each_field_of_any_type(wsgi):
    service = pyservice.Service(operations={"op": {"input": ["name", "city"]}})
    service.operation("op")(lambda request, response, context: None)
    assert wsgi(service, "/api/v1/op", body(name=1, city=[2])).status == 200
    answer = wsgi(service, "/api/v1/op", body(name=1))
    assert answer.error["errors"] == [{"path": "city", "expected": "any", "got": "nothing (the field is missing)"}]


def test_unknown_fields_are_dropped_when_the_operation_ignores_them(wsgi):
    service, seen = person_service(unknown_fields="ignore")
    answer = wsgi(service, "/api/v1/greet", body(name="Ada", address={"city": "Oslo", "planet": "Earth"}, x=1))
    assert answer.status == 200
    assert seen == [{"name": "Ada", "address": {"city": "Oslo"}, "age": 30, "tags": []}]


def test_nested_structures_in_lists_name_the_index(wsgi):
    line = {"type": "structure", "fields": {"sku": "string", "quantity": "integer"}}
    service = pyservice.Service(operations={"order": {"input": {"lines": {"type": "list", "items": line}}}})
    service.operation("order")(lambda request, response, context: None)
    answer = wsgi(service, "/api/v1/order", body(lines=[{"sku": "a", "quantity": 1}, {"sku": "b"}]))
    assert answer.error["errors"] == [
        {"path": "lines[1].quantity", "expected": "integer", "got": "nothing (the field is missing)"}
    ]


def test_validation_runs_before_the_operation_hooks(wsgi):
    service, _seen = person_service()
    events = []

    @service.plugin(scope="request")
    def outer(context):
        events.append("request")
        context.process_request()

    @service.plugin(scope="operation")
    def inner(request, response, context):
        events.append("operation")
        context.process_request()

    assert wsgi(service, "/api/v1/greet", body(name=3)).status == 400
    assert events == ["request"]


def test_the_number_of_errors_sent_is_bounded(wsgi):
    service = pyservice.Service(operations={"op": {"input": {}}})
    service.operation("op")(lambda request, response, context: None)
    answer = wsgi(service, "/api/v1/op", body(**{f"f{i}": i for i in range(500)}))
    assert len(answer.error["errors"]) == 100
    assert answer.error["message"].startswith("500 field errors")


def test_an_operation_without_input_pays_nothing(wsgi):
    service = pyservice.Service(operations={"plain": {}, "typed": {"input": ["a"]}})
    for name in ("plain", "typed"):
        service.operation(name)(lambda request, response, context: None)
    routes = service.compile()
    # The plain operation is called by the flattened path, with no input check in it.
    assert routes["/api/v1/plain"].handler_only is not None
    assert routes["/api/v1/typed"].handler_only is None
    assert "check input" not in repr(routes["/api/v1/plain"])
    assert "check input" in repr(routes["/api/v1/typed"])


# -- output ----------------------------------------------------------------


def output_service(debug, value):
    service = pyservice.Service(operations={"op": {"output": {"count": "integer"}}}, debug=debug)

    @service.operation()
    def op(request, response, context):
        response.count = value

    return service


def test_a_bad_response_is_an_internal_error_in_debug_mode(wsgi):
    answer = wsgi(output_service(True, "three"), "/api/v1/op")
    assert answer.status == 500
    assert answer.error["name"] == "InvalidOutput"
    assert "count: expected integer, got string 'three'" in answer.error["message"]


def test_responses_are_not_checked_outside_debug_mode(wsgi):
    answer = wsgi(output_service(False, "three"), "/api/v1/op")
    assert answer.json() == {"count": "three"}


def test_a_good_response_passes_the_debug_check(wsgi):
    assert wsgi(output_service(True, 3), "/api/v1/op").json() == {"count": 3}


def test_output_is_checked_after_the_operation_hooks(wsgi):
    service = output_service(True, 1)

    @service.plugin(scope="operation")
    def breaks_it(request, response, context):
        context.process_request()
        response.extra = True

    answer = wsgi(service, "/api/v1/op")
    assert answer.status == 500
    assert "extra: expected no such field" in answer.error["message"]


# -- the spec, checked at start-up ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "key", "words"),
    [
        ({"age": "int"}, "operations.op.input.age", "expected one of string, integer"),
        ({"age": {"type": "float"}}, "operations.op.input.age.type", "expected one of"),
        ({"age": {"required": True}}, "operations.op.input.age.type", "is required"),
        ({"age": {"type": "integer", "default": "x"}}, "operations.op.input.age.default", "does not match"),
        ({"age": {"type": "integer", "required": True, "default": 1}}, "operations.op.input.age.required", "default"),
        ({"age": {"type": "integer", "items": "string"}}, "operations.op.input.age.items", "only a list"),
        ({"age": {"type": "integer", "colour": 1}}, "operations.op.input.age.colour", "unknown key"),
        ({"a": {"type": "structure"}}, "operations.op.input.a.fields", "required for a structure"),
        ({"a": "structure"}, "operations.op.input.a", "needs its fields"),
        ({"a": {"fields": {"b": "bool"}}}, "operations.op.input.a.fields.b", "expected one of"),
        ({"a": {"type": "list", "items": {"type": "nope"}}}, "operations.op.input.a.items.type", "expected one of"),
        ({"a": ["string", "string"]}, "operations.op.input.a", "listed twice"),
        ({"a": []}, "operations.op.input.a", "non-empty"),
        (["a", "a"], "operations.op.input.a", "listed twice"),
        (["a", 1], "operations.op.input", "field names"),
        ("name", "operations.op.input", "expected a list or a mapping"),
    ],
)
def test_a_wrong_spec_fails_at_start_up_naming_the_key(spec, key, words):
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations={"op": {"input": spec}})
    assert raised.value.key == key
    assert words in str(raised.value)


def test_a_default_of_the_wrong_type_names_the_field_and_the_wrong_item():
    spec = {"tags": {"type": "list", "items": "string", "default": ["a", 3]}}
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations={"op": {"input": spec}})
    assert str(raised.value).endswith(
        "the default of 'tags' does not match its type: tags[1]: expected string, got integer 3"
    )
    assert "(the body)" not in str(raised.value)


def test_unknown_fields_accepts_only_reject_or_ignore():
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations={"op": {"unknown_fields": "drop"}})
    assert raised.value.key == "operations.op.unknown_fields"


def test_a_spec_without_type_takes_it_from_its_one_sub_spec():
    service = pyservice.Service(operations={"op": {"input": {"a": {"items": "integer"}, "b": {"fields": {}}}}})
    fields = service.api.operations["op"].input.fields
    assert fields["a"].types == ("list",)
    assert fields["b"].types == ("structure",)


# -- per-operation exceptions -------------------------------------------------


def test_an_operation_whitelists_its_own_exceptions(wsgi):
    service = pyservice.Service(
        operations={"a": {"exceptions": {"Gone": {"status": 410}}}, "b": {}},
        exceptions=["Refused"],
    )

    @service.operation()
    def a(request, response, context):
        raise service.exceptions.Gone("a is gone")

    @service.operation()
    def b(request, response, context):
        raise service.exceptions.Gone("b is gone")

    answer = wsgi(service, "/api/v1/a")
    assert (answer.status, answer.error["name"]) == (410, "Gone")
    assert wsgi(service, "/api/v1/b").error["name"] == "InternalError"
    client = client_for(service)
    with pytest.raises(client.exceptions.Gone):
        client.a()


def test_a_listed_operation_exception_keeps_the_api_status():
    service = pyservice.Service(operations={"a": {"exceptions": ["Gone"]}}, exceptions={"Gone": {"status": 410}})
    assert service.api.operations["a"].exceptions == {"Gone": 410}


def test_a_wrong_operation_exception_fails_naming_the_key():
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations={"a": {"exceptions": ["Exception"]}})
    assert raised.value.key == "operations.a.exceptions.Exception"


# -- the client ---------------------------------------------------------------


def test_the_client_raises_invalid_request_with_the_errors_from_the_service():
    service, _seen = person_service()
    client = client_for(service)
    with pytest.raises(pyservice.InvalidRequest) as raised:
        client.greet(name=1, address={"city": "Rome"})
    assert raised.value.status == 400
    assert raised.value.errors == [{"path": "name", "expected": "string", "got": "integer 1"}]
    assert isinstance(raised.value, pyservice.ClientError)
    assert not isinstance(raised.value, pyservice.ServiceError)


def test_a_validating_client_refuses_to_send_a_bad_request():
    service, seen = person_service()
    client = client_for(service, validate=True)
    sent = []

    @client.plugin(scope="attempt")
    def count(context):
        sent.append(1)
        context.process_request()

    with pytest.raises(pyservice.InvalidRequest) as raised:
        client.greet(address={"city": 3})
    assert raised.value.status is None
    assert [error["path"] for error in raised.value.errors] == ["name", "address.city"]
    assert sent == []
    assert client.greet(name="Ada", address={"city": "Rome"}).greeting == "hello Ada"
    assert seen[-1]["age"] == 30


def test_a_validating_client_sends_operations_without_input_as_they_are():
    service = pyservice.Service(operations=["echo"])
    service.operation("echo")(lambda request, response, context: response.update(request))
    assert client_for(service, validate=True).echo(anything=[1]) == {"anything": [1]}
