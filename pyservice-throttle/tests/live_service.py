"""A throttled service for LiveServer tests, configured by environment variables.

THROTTLE_CONFIG: the throttle plugin's config, as JSON.
CLOCK_FILE: a file holding the time in seconds; every worker reads it, so a
test moves time for all of them at once, without sleeping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pyservice import Plugin, Service
from pyservice_throttle import Throttle

CLOCK_FILE = Path(os.environ["CLOCK_FILE"])


def clock() -> float:
    return float(CLOCK_FILE.read_text())


class Worker(Plugin):
    """Says which worker process answered, on every answer."""

    name = "worker"

    def setup(self, owner: Any) -> None:
        @owner.plugin("request", name=self.name)
        def worker(context: Any) -> None:
            context.response_headers.append(("X-Worker", str(os.getpid())))
            context.process_request()


config = {**json.loads(os.environ["THROTTLE_CONFIG"]), "clock": clock}
service = Service(
    available_plugins=[Worker, Throttle],
    name="live",
    operations=["ping"],
    plugins={"worker": {}, "throttle": config},
)


@service.operation("ping")
def ping(request: Any, response: Any, context: Any) -> None:
    response.pong = True
