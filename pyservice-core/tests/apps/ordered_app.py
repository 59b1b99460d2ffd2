"""A service whose plugins the api lists against their declared order: ``ordered_app:service``."""

from __future__ import annotations

from typing import Any

import pyservice


class Auth(pyservice.Plugin):
    name = "auth"

    def setup(self, owner: Any) -> None:
        @owner.plugin("request", name=self.name)
        def authenticate(context: Any) -> None:
            context.process_request()


class Throttle(pyservice.Plugin):
    name = "throttle"
    after = ("auth",)

    def setup(self, owner: Any) -> None:
        @owner.plugin("request", name=self.name)
        def throttle(context: Any) -> None:
            context.process_request()


service = pyservice.Service(
    name="ordered", operations=["op"], plugins={"throttle": {}, "auth": {}}, available_plugins=[Auth, Throttle]
)
service.operation("op")(lambda request, response, context: None)
