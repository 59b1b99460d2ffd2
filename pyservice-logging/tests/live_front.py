"""A service whose handler calls the back service with a pyservice Client."""

import os

import pyservice
from live_back import api as back_api

api = {
    "name": "front",
    "operations": ["fetch"],
    "plugins": {"logging": {"output": "stdout", "configure_stdlib": True}},
}
service = pyservice.Service(**api)
back = pyservice.Client(
    **{**back_api, "plugins": {"logging": {"output": "stdout"}}, "endpoint": {"port": int(os.environ["BACK_PORT"])}}
)


@service.operation("fetch")
def fetch(request, response, context):
    response.value = back.lookup(key=request.key).value
