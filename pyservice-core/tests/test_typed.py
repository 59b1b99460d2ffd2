"""Types that help: structures declared as classes, reads of undeclared fields in debug mode, the base context."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any, NotRequired, Required, TypedDict

import pyservice
import pytest
from pyservice._container import UndeclaredField
from pyservice.testing import client_for


@dataclasses.dataclass
class Address:
    city: str
    postcode: str | None = None


@dataclasses.dataclass
class Register:
    name: Annotated[str, "The person's full name."]
    age: int
    tags: list[str] = dataclasses.field(default_factory=list)
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    address: Address | None = None


class Registered(TypedDict):
    id: str
    warnings: NotRequired[list[str]]


class Partial(TypedDict, total=False):
    a: int
    b: Required[str]


class Plain:
    x: float
    y: float = 0.0


def structure(given: Any, key: str = "input") -> pyservice.Service:
    return pyservice.Service(operations={"op": {key: given}})


def test_a_dataclass_declares_the_same_structure_as_the_written_mapping():
    from_class = structure(Register).api.operations["op"].input
    written = (
        structure(
            {
                "name": {"type": "string", "doc": "The person's full name."},
                "age": "integer",
                "tags": {"type": "list", "items": "string", "default": []},
                "scores": {"type": "mapping", "values": "number", "default": {}},
                "address": {
                    "type": ["structure", "null"],
                    "fields": {"city": "string", "postcode": {"type": ["string", "null"], "default": None}},
                    "default": None,
                },
            }
        )
        .api.operations["op"]
        .input
    )
    assert from_class.fields == written.fields


def test_a_typeddicts_not_required_keys_are_optional():
    fields = structure(Registered, "output").api.operations["op"].output.fields
    assert (fields["id"].required, fields["warnings"].required) == (True, False)
    partial = structure(Partial).api.operations["op"].input.fields
    assert (partial["a"].required, partial["b"].required) == (False, True)


def test_a_plain_classs_attribute_is_the_default():
    fields = structure(Plain).api.operations["op"].input.fields
    assert (fields["x"].required, fields["y"].default) == (True, 0.0)


def test_a_class_structure_checks_requests_like_a_written_one():
    service = pyservice.Service(operations={"register": {"input": Register, "output": Registered}}, debug=True)

    @service.operation("register")
    def register(request: Register, response: Registered, context: pyservice.ServiceContext) -> None:
        response["id"] = f"{request.name}-{request.age}-{len(request.tags)}"

    client = client_for(service, {"operations": ["register"]})
    assert client.register(name="ada", age=36).id == "ada-36-0"
    with pytest.raises(pyservice.InvalidRequest) as raised:
        client.register(name="ada", age="old", address={"city": 3})
    paths = [error["path"] for error in raised.value.errors]
    assert paths == ["age", "address.city"]


def test_a_class_structure_is_documented_in_the_openapi_document():
    schema = structure(Register).openapi()["paths"]["/api/v1/op"]["post"]["requestBody"]["content"]
    properties = schema["application/json"]["schema"]["properties"]
    assert properties["name"] == {"type": "string", "description": "The person's full name."}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}, "default": []}


@pytest.mark.parametrize(
    ("annotation", "words"),
    [
        (set[str], "a field's type is str, int"),
        (dict[int, str], "string keys"),
        (tuple[int, str], "tuple[X, ...]"),
    ],
)
def test_an_annotation_that_is_no_field_type_fails_at_start_up_naming_the_field(annotation, words):
    cls = type("Bad", (), {"__annotations__": {"ok": str, "wrong": annotation}})
    with pytest.raises(pyservice.ApiError) as raised:
        structure(cls)
    assert raised.value.key == "operations.op.input.wrong"
    assert words in str(raised.value)


def test_a_class_without_fields_is_refused():
    with pytest.raises(pyservice.ApiError, match="declares no fields"):
        structure(type("Empty", (), {}))


def debug_service(debug: bool) -> pyservice.Service:
    service = pyservice.Service(
        operations={"greet": {"input": {"name": "string", "city": {"type": "string", "required": False}}}},
        debug=debug,
    )

    @service.operation("greet")
    def greet(request, response, context):
        response.city = request.city  # declared, absent: None
        response.greeting = f"hello {request.nam}"  # a typo

    return service


def test_in_debug_mode_reading_an_undeclared_field_fails_naming_it_and_the_declared_ones():
    client = client_for(debug_service(debug=True), {"operations": ["greet"]})
    with pytest.raises(pyservice.ServiceError) as raised:
        client.greet(name="Ada")
    assert raised.value.status == 500
    assert str(raised.value).endswith(
        "UndeclaredField: request.nam: operation 'greet' declares no such input field (declared: name, city)"
    )


def test_outside_debug_mode_an_undeclared_field_reads_as_none():
    client = client_for(debug_service(debug=False), {"operations": ["greet"]})
    assert client.greet(name="Ada").greeting == "hello None"


def test_an_undeclared_field_is_still_an_attribute_error_for_getattr_with_a_default():
    service = pyservice.Service(operations={"op": {"input": ["a"]}}, debug=True)
    seen = {}

    @service.operation("op")
    def op(request, response, context):
        seen["b"] = getattr(request, "b", "fallback")
        seen["has_b"] = hasattr(request, "b")
        response.echo = request  # encodes as its fields

    assert client_for(service, {"operations": ["op"]}).op(a=1).echo == {"a": 1}
    assert seen == {"b": "fallback", "has_b": False}
    assert issubclass(UndeclaredField, AttributeError)


def test_outside_debug_mode_requests_stay_plain_containers():
    service = pyservice.Service(operations={"op": {"input": ["a"]}})
    seen = []
    service.operation("op")(lambda request, response, context: seen.append(type(request)))
    client_for(service, {"operations": ["op"]}).op(a=1)
    assert seen == [pyservice.Container]


def test_the_base_context_says_the_time_left():
    context = pyservice.Context()
    assert context.time_left() is None
    context.deadline = time.monotonic() + 60
    assert 0 < context.time_left() <= 60
    context.deadline = time.monotonic() - 1
    assert context.time_left() == 0.0


def test_a_service_takes_an_annotated_description_and_plugin_classes():
    from pyservice.typing import ApiDescription

    api: ApiDescription = {"name": "typed", "operations": {"greet": {"input": ["name"]}}}
    service = pyservice.Service(available_plugins=[], **api)
    assert service.api.name == "typed"
