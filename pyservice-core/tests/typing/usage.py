"""The documented ways of using pyservice, type-checked with ``mypy --strict`` (never run by pytest).

Each block is a style the docs show (README, docs/getting-started.md,
docs/structures.md, docs/plugins.md, docs/testing.md), written as a user
with a strict type checker writes it. The tox env ``typing`` runs::

    mypy --strict pyservice-core/tests/typing

A change to the public types that breaks a documented style fails there.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any, NotRequired, TypedDict

import pyservice
from pyservice.testing import client_for
from pyservice.typing import ApiDescription, OperationHook, RequestHook

# -- the README's short example: a dict literal, Service(**api) ------------------

api = {
    "endpoint": {"host": "127.0.0.1", "port": 8080},
    "operations": ["get_item", "put_item"],
    "exceptions": ["IDRequired", "DoesNotExist", "ItemRequired"],
}

service = pyservice.Service(**api)
client = pyservice.Client(**api)
items: dict[str, Any] = {}


@service.operation("put_item")
def put_item(request: pyservice.Container, response: pyservice.Container, context: pyservice.ServiceContext) -> None:
    if request.item is None:
        raise service.exceptions.ItemRequired("Need an item to put")
    response.id = str(uuid.uuid4())
    items[response.id] = request.item


@service.operation("get_item")
def get_item(request: pyservice.Container, response: pyservice.Container, context: pyservice.ServiceContext) -> None:
    if request.id not in items:
        raise service.exceptions.DoesNotExist(f"No item with id {request.id}")
    response.item = items[request.id]


# -- an annotated description: the editor completes and checks the core's keys ------

typed_api: ApiDescription = {
    "name": "greeter",
    "version": "v1",
    "endpoint": {"host": "127.0.0.1", "port": 8080},
    "operations": {"greet": {"input": {"name": "string"}, "idempotent": True}},
    "exceptions": {"NameRequired": {"status": 422}},
    "openapi": "/openapi.json",
    "explorer": "/docs",
}
typed = pyservice.Service(**typed_api)
typed_with_plugins = pyservice.Service(available_plugins=[], **typed_api)


# -- the getting-started handler: response fields set as attributes ---------------


@typed.operation("greet")
def greet(request: pyservice.Container, response: pyservice.Container, context: pyservice.ServiceContext) -> None:
    if not request.name:
        raise typed.exceptions.NameRequired("Who should I greet?")
    response.greeting = f"Hello, {request.name}!"
    left: float | None = context.time_left()
    response.seconds_left = left
    response.caller = context.caller or context.remote_addr


# The base class has time_left too: a helper written for either side's context.
def budget(context: pyservice.Context) -> float:
    left = context.time_left()
    return 1.0 if left is None else min(1.0, left)


# -- the unpacking style: a plain function of the fields ---------------------------

unpacking = pyservice.Service(
    operations={"hello": {"input": {"name": "string", "city": {"type": "string", "default": "Paris"}}}}
)


@unpacking.operation(unpack=True)
def hello(name: str, city: str = "Paris", context: pyservice.ServiceContext | None = None) -> dict[str, str]:
    return {"greeting": f"hello {name} from {city}"}


# -- structures declared as classes: fields an editor completes and checks -----------


@dataclasses.dataclass
class Address:
    city: str
    postcode: str | None = None


@dataclasses.dataclass
class Register:
    name: Annotated[str, "The person's full name."]
    age: int
    tags: list[str] = dataclasses.field(default_factory=list)
    address: Address | None = None


class Registered(TypedDict):
    id: str
    warnings: NotRequired[list[str]]


class Registration:
    """A plain class works as well as a dataclass: annotations declare the fields."""

    id: str
    name: str


classes = pyservice.Service(
    operations={"register": {"input": Register, "output": Registered}, "lookup": {"output": Registration}}
)


@classes.operation("register")
def register(request: Register, response: Registered, context: pyservice.ServiceContext) -> None:
    # request.name is a str to the type checker, and request.nmae an error.
    response["id"] = f"{request.name.lower()}-{request.age}"
    if request.address is not None and request.address.postcode is None:
        response["warnings"] = ["no postcode"]


@classes.operation("lookup")
def lookup(request: pyservice.Container, response: Registration, context: pyservice.ServiceContext) -> None:
    response.id = "ada-36"
    response.name = "Ada"


# -- hooks, typed as the public shapes -------------------------------------------------


@service.plugin(scope="request")
def timing(context: pyservice.ServiceContext) -> None:
    context.process_request()
    context.response_headers.append(("Server-Timing", "call"))


@service.plugin(scope="operation")
def audit(request: pyservice.Container, response: pyservice.Container, context: pyservice.ServiceContext) -> None:
    context.process_request()
    context.annotate(audited=True)


request_hook: RequestHook = timing
operation_hook: OperationHook = audit


# -- several versions, the client, the test client ---------------------------------

group = pyservice.ServiceGroup(typed, pyservice.Service(**{**typed_api, "version": "v2"}))
document: dict[str, Any] = group.openapi("https://greeter.example")
chain: str = group.describe_chain(verbose=True)

with client_for(typed, typed_api) as test_client:
    answer = test_client.greet(name="Ada")
    greeting: str = answer.greeting
    try:
        test_client.greet()
    except test_client.exceptions.NameRequired as exc:
        message = str(exc)
