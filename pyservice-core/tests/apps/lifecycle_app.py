"""A service whose plugin records where its per-process start and stop run: ``lifecycle_app:service``.

Each line of the file named by ``LIFECYCLE_LOG`` is ``<event> <pid>``.
"""

from __future__ import annotations

import os
from typing import Any

import pyservice


class Pool(pyservice.Plugin):
    """Stands for a connection pool: made in ``start``, closed in ``stop``, used by every call."""

    name = "pool"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.opened_in: int | None = None

    def setup(self, owner: Any) -> None:
        self.record("setup")

        @owner.plugin("request", name=self.name)
        def use(context: Any) -> None:
            # Before the call goes on: a request hook's changes after it would come after encoding.
            context.response.pool_pid = self.opened_in
            context.process_request()

    def start(self, owner: Any) -> None:
        self.opened_in = os.getpid()
        self.record("start")

    def stop(self, owner: Any) -> None:
        self.record("stop")

    def record(self, event: str) -> None:
        with open(os.environ["LIFECYCLE_LOG"], "a") as log:
            log.write(f"{event} {os.getpid()}\n")


service = pyservice.Service(name="lifecycle", operations=["whoami"], plugins={"pool": {}}, available_plugins=[Pool])


@service.operation()
def whoami(request: Any, response: Any, context: Any) -> None:
    response.pid = os.getpid()
