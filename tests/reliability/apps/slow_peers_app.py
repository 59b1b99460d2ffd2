"""A small service for the slow-peer tests and measurements: ``slow_peers_app:service``."""

from __future__ import annotations

import os
import time

import pyservice

api = {"name": "slow-peers", "operations": {"echo": {}, "slow": {}}, "max_body_size": 64 * 1024}
service = pyservice.Service(**api)


@service.operation()
def echo(request, response, context):
    response.update(request)
    response.pid = os.getpid()


@service.operation()
def slow(request, response, context):
    time.sleep(float(request.seconds or 1))
    response.pid = os.getpid()
