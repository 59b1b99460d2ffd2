"""A service, a group and a client for the `pyservice chain` and `serve` tests."""

from __future__ import annotations

import pyservice

api = {
    "name": "chained",
    "debug": True,
    "operations": {
        "greet": {"input": {"name": "string", "city": {"type": "string", "default": "Paris"}}, "output": ["greeting"]},
        "plain": {},
    },
}
service = pyservice.Service(**api)


@service.plugin(scope="request")
def timing(context):
    context.process_request()


@service.operation(unpack=True)
def greet(name, city):
    return {"greeting": f"hello {name} from {city}"}


@service.operation()
def plain(request, response, context):
    response.version = context.service.api.version


v2 = pyservice.Service(**{**api, "version": "v2", "operations": {"plain": {}}})
v2.operation("plain")(plain)
group = pyservice.ServiceGroup(service, v2)

client = pyservice.Client(**api, validate=True)
