"""Two versions of one api in one process, sharing their handlers.

v1 has ``greet(name)`` and ``shout(text)``; v2 changes ``greet`` (a typed
input with an optional ``polite`` flag) and drops ``shout``. The handlers
that did not change are registered on both services; ``app`` serves both:

    pyservice serve versions:app

A client is pinned to a version by its own description: ``Client(**V1)``
calls ``/api/v1/...``, ``Client(**V2)`` calls ``/api/v2/...``, and a path
of a version or operation that is not served is the protocol's 404.
``/openapi.json`` is one OpenAPI document for both versions (``pyservice
openapi versions:app`` prints it): ``v1_greet`` and ``v2_greet`` keep the
operation ids unique.
"""

from __future__ import annotations

import pyservice

# Both versions name one document path: the group serves their merged OpenAPI document there.
COMMON = {
    "name": "greeter",
    "endpoint": {"port": 8080},
    "exceptions": {"Silent": {"status": 422}},
    "openapi": "/openapi.json",
}

V1 = {
    **COMMON,
    "version": "v1",
    "operations": {"greet": {"input": ["name"]}, "shout": {"input": {"text": "string"}}, "stats": {}},
}
V2 = {
    **COMMON,
    "version": "v2",
    "operations": {
        "greet": {
            "input": {"name": "string", "polite": {"type": "boolean", "default": False}},
            "output": {"greeting": "string"},
        },
        "stats": {},
    },
}

v1 = pyservice.Service(**V1)
v2 = pyservice.Service(**V2)
calls = {"v1": 0, "v2": 0}


# The classic handler style, shared as it is by both versions.
def stats(request, response, context):
    response.version = context.service.api.version
    response.calls = calls[context.service.api.version]


# The unpacking style: a plain function of the request's fields.
def greet_v1(name, context):
    calls["v1"] += 1
    return {"greeting": f"hello {name}"}


def greet_v2(name, polite, context):
    calls["v2"] += 1
    return {"greeting": f"Good day, {name}." if polite else f"hello {name}"}


def shout(text):
    if not text:
        raise v1.exceptions.Silent("nothing to shout")
    return {"text": text.upper() + "!"}


for service in (v1, v2):
    service.operation("stats")(stats)
v1.operation("greet", unpack=True)(greet_v1)
v1.operation("shout", unpack=True)(shout)
v2.operation("greet", unpack=True)(greet_v2)

app = pyservice.ServiceGroup(v1, v2)
