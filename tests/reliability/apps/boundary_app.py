"""The service the bad-input suite attacks: ``boundary_app:service``."""

from __future__ import annotations

import os

import pyservice

api = {
    "name": "boundary",
    "operations": {"echo": {}, "count": {}},
    "exceptions": ["Refused"],
    "max_body_size": 64 * 1024,
}
service = pyservice.Service(**api)


@service.operation()
def echo(request, response, context):
    response.update(request)


@service.operation()
def count(request, response, context):
    response.fields = len(request)
    response.pid = os.getpid()
