"""The service called by the other one (live_front)."""

from __future__ import annotations

import pyservice
from live_apps import OTEL

back = pyservice.Service(name="back", operations=["lookup"], plugins={"otel": OTEL})


@back.operation("lookup")
def lookup(request, response, context):
    response.value = request.key.upper()
