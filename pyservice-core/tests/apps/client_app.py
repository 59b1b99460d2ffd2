"""A service for the Client's transport and retry tests over real HTTP: ``client_app:service``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyservice

api = {
    "name": "clientapp",
    "operations": {
        "echo": {"idempotent": True},
        "create": {},
        "slow": {"idempotent": True},
        "big": {"idempotent": True},
        "unavailable": {"idempotent": True},
        "race": {"idempotent": True},
    },
    "exceptions": {"Unavailable": {"status": 503}},
}
service = pyservice.Service(**api)


@service.operation()
def echo(request, response, context):
    response.update(request)
    response.pid = os.getpid()
    response.timeout_header = context.environ.get("HTTP_PYSERVICE_TIMEOUT")
    response.key = context.environ.get("HTTP_IDEMPOTENCY_KEY")


@service.operation()
def create(request, response, context):
    response.created = request.name


@service.operation()
def slow(request, response, context):
    time.sleep(float(request.seconds or 0))
    response.slept = request.seconds


@service.operation()
def big(request, response, context):
    response.blob = "x" * int(request.size)


@service.operation()
def unavailable(request, response, context):
    # Every call is refused with 503 while the marker file exists (or when asked to fail).
    marker = request.marker
    if request.fail or (marker and Path(marker).exists()):
        raise service.exceptions.Unavailable("down for the test")
    response.ok = True


@service.operation()
def race(request, response, context):
    # The first attempt of a token (whichever worker takes it) is slow, the others answer at once.
    path = Path(request.directory) / request.token
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        response.first = False
        return
    os.close(fd)
    time.sleep(float(request.seconds))
    response.first = True
