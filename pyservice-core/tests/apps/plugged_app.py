"""A service with a plugin on one operation only, for `pyservice chain` (tests/test_cli.py)."""

from __future__ import annotations

import pyservice


class Limit(pyservice.Plugin):
    """Registers its hook only on the operations that set a limit."""

    name = "limit"
    options = {
        "limit": pyservice.Option(int, 0, "Calls allowed; 0 for no limit."),
        "key": pyservice.Option(str, "k", secret=True),
    }
    operation_options = {"limit": options["limit"]}

    def setup(self, owner):
        for operation in owner.api.operations.values():
            if (self.operation_config(operation) or self.config)["limit"]:
                owner.plugin("request", operations=[operation.name], name=self.name)(self.hook)

    def hook(self, context):
        context.process_request()


service = pyservice.Service(
    name="plugged",
    operations={"put": {"plugins": {"limit": {"limit": 5}}}, "get": {}},
    plugins={"limit": {}},
    available_plugins=[Limit],
)
service.operation("put")(lambda request, response, context: None)
service.operation("get")(lambda request, response, context: None)
