"""Two versions sharing one OpenAPI document and one API explorer (tests/test_explorer.py)."""

from __future__ import annotations

import pyservice

COMMON = {"name": "greeter", "openapi": "/openapi.json", "explorer": "/docs"}
v1 = pyservice.Service(**COMMON, version="v1", operations={"greet": {"input": ["name"]}})
v2 = pyservice.Service(
    **COMMON, version="v2", operations={"greet": {"input": {"name": "string"}, "output": {"greeting": "string"}}}
)


def greet(request, response, context):
    """Greet someone."""
    response.greeting = f"hello {request.name}"


for service in (v1, v2):
    service.operation("greet")(greet)

app = pyservice.ServiceGroup(v1, v2)
