"""A service for the tests that need a real server: ``live_app:service``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyservice

api = {
    "name": "live",
    "debug": os.environ.get("LIVE_DEBUG") == "1",
    "operations": {
        "echo": {"idempotent": True},
        "slow": {"idempotent": True},
        "fail": {},
        "refuse": {},
        "small": {"max_body_size": 64},
        "whoami": {},
    },
    "exceptions": {"Refused": {"status": 403}},
}
service = pyservice.Service(**api)


@service.plugin(scope="request")
def served_by(context):
    context.process_request()
    context.response_headers.append(("X-Worker", str(os.getpid())))


@service.plugin(scope="operation")
def stamp(request, response, context):
    context.process_request()
    response.stamped = True


@service.operation()
def echo(request, response, context):
    response.update(request)


@service.operation()
def slow(request, response, context):
    if request.started:
        # Tells a test that the call is in the worker now.
        Path(request.started).touch()
    time.sleep(float(request.seconds or 1))
    response.pid = os.getpid()


@service.operation()
def fail(request, response, context):
    raise RuntimeError("the database password is hunter2")


@service.operation()
def refuse(request, response, context):
    raise service.exceptions.Refused("not you", request.who)


@service.operation()
def small(request, response, context):
    response.ok = True


@service.operation()
def whoami(request, response, context):
    response.remote_addr = context.remote_addr
    response.pid = os.getpid()
