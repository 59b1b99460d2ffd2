"""Extra metadata in the api description, read by a plugin.

The ``ownership`` plugin declares a top-level key (``team``) and an
operation key (``owner``) it owns: the core accepts them only while the
plugin is enabled, checks their types at start-up, and keeps them in
``api.extra`` and ``operation.extra``. The plugin answers each call with an
``X-Owner`` header and refuses to start while an operation has no owner
(unless the api names a team to fall back to).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pyservice


class Ownership(pyservice.Plugin):
    """Says who owns each operation, from metadata in the api description."""

    name: ClassVar[str] = "ownership"
    options: ClassVar[Mapping[str, pyservice.Option]] = {
        "header": pyservice.Option(str, "X-Owner", "The answer header naming the owner."),
    }
    api_keys: ClassVar[Mapping[str, pyservice.Option]] = {
        "team": pyservice.Option(str, None, "The team owning operations that name no owner."),
    }
    operation_keys: ClassVar[Mapping[str, pyservice.Option]] = {
        "owner": pyservice.Option(str, None, "Who owns this operation."),
    }

    def setup(self, owner: pyservice.Service | pyservice.Client) -> None:
        if owner.side != "service":
            return
        team = owner.api.extra["team"]
        header = self.config["header"]
        for operation in owner.api.operations.values():
            who = operation.extra["owner"] or team
            if who is None:
                raise pyservice.ApiError(f"operations.{operation.name}.owner", "every operation needs an owner")
            owner.plugin(scope="request", operations=[operation.name], name=self.name)(self.make_hook(header, who))

    @staticmethod
    def make_hook(header: str, who: str):  # type: ignore[no-untyped-def]
        def announce_owner(context: pyservice.ServiceContext) -> None:
            context.response_headers.append((header, who))
            context.process_request()

        return announce_owner


API = {
    "name": "billing",
    "team": "payments",
    "plugins": {"ownership": {}},
    "operations": {"charge": {"owner": "alice"}, "refund": {}},
}
service = pyservice.Service(**API, available_plugins=[Ownership])


@service.operation(unpack=True)
def charge(amount=0):
    return {"charged": amount}


@service.operation(unpack=True)
def refund(amount=0):
    return {"refunded": amount}
