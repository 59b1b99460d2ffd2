"""A service with declared structures, for the OpenAPI and schemathesis tests: ``typed_app:service``."""

from __future__ import annotations

import pyservice

ADDRESS = {"type": "structure", "fields": {"city": "string", "zip": {"type": "string", "required": False}}}

api = {
    "name": "typed",
    "version": "v1",
    "debug": True,  # responses are checked against their declared output too
    "openapi": "/openapi.json",
    "operations": {
        "greet": {
            "input": {
                "name": {"type": "string", "doc": "Who to greet."},
                "times": {"type": "integer", "default": 1},
                "address": {**ADDRESS, "required": False},
                "tags": {"type": "list", "items": "string", "default": []},
            },
            "output": {"greeting": "string", "tags": {"type": "list", "items": "string"}},
        },
        "lookup": {
            "idempotent": True,
            "input": {"id": "integer"},
            "output": {"id": "integer", "name": ["string", "null"]},
            "exceptions": {"DoesNotExist": {"status": 404}},
        },
        "average": {
            "input": {"values": {"type": "mapping", "values": "number"}},
            "output": {"average": ["number", "null"]},
        },
        "tally": {"input": ["items"], "output": ["count"], "unknown_fields": "ignore"},
        "describe": {},
    },
    "exceptions": {"Invalid": {"status": 422}},
}
service = pyservice.Service(**api)
NAMES = {1: "one", 2: None}


@service.operation()
def greet(request, response, context):
    """Greet someone, a few times."""
    response.greeting = " ".join(["hello " + request.name] * max(0, min(request.times, 3)))
    response.tags = request.tags


@service.operation(unpack=True)
def lookup(id):
    """Look a name up by id."""
    if id not in NAMES:
        raise service.exceptions.DoesNotExist(f"no name with id {id}")
    return {"id": id, "name": NAMES[id]}


@service.operation(unpack=True)
def average(values):
    numbers = list(values.values())
    return {"average": sum(numbers) / len(numbers) if numbers else None}


@service.operation(unpack=True)
def tally(items):
    return {"count": len(items) if isinstance(items, (list, dict, str)) else 1}


@service.operation(unpack=True)
def describe(value=None, **more):
    """Describe a value: an unpacking handler without a declared input takes any JSON."""
    return {"kind": type(value).__name__, "more": sorted(more)}
