from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pyservice import Caller, Option, Plugin
from pyservice.testing import client_for
from pyservice_cache import Cache, cache_of

from .conftest import OPERATIONS, Items, make_api


def caching_client(items: Items, **operations: dict[str, Any]) -> Any:
    """A client whose own cache plugin caches the given operations."""
    api = dict(items.service.api.raw)
    api["plugins"] = {"cache": {"sides": ["client"]}}
    api["operations"] = {name: {} for name in OPERATIONS}
    for name, entry in operations.items():
        api["operations"][name] = {"plugins": {"cache": entry}}
    return client_for(items.service, api, available_plugins=[Cache])


def test_a_client_hit_makes_no_http_call() -> None:
    items = Items(make_api())  # the service does not cache
    items.items["1"] = {"name": "teapot"}
    client = caching_client(items, get_item={"scope": "public"})
    assert client.get_item(id="1").item == {"name": "teapot"}
    assert client.get_item(id="1").item == {"name": "teapot"}
    assert items.runs["get_item"] == 1
    assert cache_of(client).stats.hits == 1


def test_client_caller_scope_varies_on_the_authorization_header() -> None:
    items = Items(make_api())
    client = caching_client(items, whoami={"scope": "caller"})
    client.call("whoami", {}, headers={"Authorization": "Bearer a"})
    client.call("whoami", {}, headers={"Authorization": "Bearer b"})
    client.call("whoami", {}, headers={"authorization": "Bearer a"})
    assert items.runs["whoami"] == 2


def test_client_vary_headers_are_configurable() -> None:
    items = Items(make_api())
    client = caching_client(items, whoami={"scope": "caller", "vary_headers": ["X-Tenant"]})
    client.call("whoami", {}, headers={"X-Tenant": "a"})
    client.call("whoami", {}, headers={"X-Tenant": "b"})
    client.call("whoami", {}, headers={"X-Tenant": "a", "Authorization": "ignored"})
    assert items.runs["whoami"] == 2


def test_client_negative_caching_replays_the_exception() -> None:
    items = Items(make_api())
    client = caching_client(items, get_item={"scope": "public", "negative": ["DoesNotExist"]})
    for _ in range(2):
        with pytest.raises(client.exceptions.DoesNotExist, match="no item x"):
            client.get_item(id="x")
    assert items.runs["get_item"] == 1


def test_a_client_invalidates_its_own_cache() -> None:
    items = Items(make_api())
    items.items["1"] = "old"
    client = caching_client(items, get_item={"scope": "public"})
    client.get_item(id="1")
    items.items["1"] = "new"
    assert client.get_item(id="1").item == "old"
    assert cache_of(client).invalidate("get_item", {"id": "1"}) == 1
    assert client.get_item(id="1").item == "new"


def test_service_and_client_keys_never_collide_in_one_backend() -> None:
    from pyservice_cache import MemoryBackend

    backend = MemoryBackend()
    items = Items(make_api({"backend": backend}, whoami={"scope": "public"}))
    api = dict(items.service.api.raw)
    api["plugins"] = {"cache": {"sides": ["client"], "backend": backend}}
    client = client_for(items.service, api, available_plugins=[Cache])
    assert client.whoami().caller == "127.0.0.1"
    assert len(backend) == 2


def test_a_caller_scoped_client_call_that_names_no_caller_is_not_cached() -> None:
    items = Items(make_api())
    client = caching_client(items, whoami={"scope": "caller"})
    client.whoami()
    client.whoami()
    assert items.runs["whoami"] == 2
    assert cache_of(client).stats.bypasses == 2


class Ident(Plugin):
    """Sets the client's credential identity, as pyservice-auth's client side does."""

    name = "ident"
    options: ClassVar[dict[str, Option]] = {"who": Option(str, "x", "The fingerprint.")}

    def setup(self, owner: Any) -> None:
        identity = Caller.credential("test", self.config["who"])

        @owner.plugin("operation", name=self.name)
        def ident(request: Any, response: Any, context: Any) -> None:
            context.caller_identity = identity
            context.process_request()


def _identified_client(items: Items, who: str, backend: Any) -> Any:
    api = dict(items.service.api.raw)
    api["plugins"] = {"ident": {"who": who}, "cache": {"sides": ["client"], "backend": backend}}
    api["operations"] = {name: {} for name in OPERATIONS}
    api["operations"]["whoami"] = {"plugins": {"cache": {"scope": "caller"}}}
    return client_for(items.service, api, available_plugins=[Ident, Cache])


def test_client_caller_scope_keys_on_the_credential_identity() -> None:
    from pyservice_cache import MemoryBackend

    backend = MemoryBackend()
    items = Items(make_api())
    alice, bob = _identified_client(items, "a1", backend), _identified_client(items, "b2", backend)
    alice.whoami()
    bob.whoami()
    alice.whoami()
    bob.whoami()
    assert items.runs["whoami"] == 2
    assert cache_of(alice).caller_of("whoami", _Context("a1")) == ["credential:test:a1", None, None]


class _Context:
    def __init__(self, who: str) -> None:
        self.caller_identity = Caller.credential("test", who)
        self.headers: dict[str, str] = {}


def test_auth_listed_after_the_cache_on_a_client_is_placed_outside_it() -> None:
    # Cache declares after = ("auth", "throttle"): auth's hook sets the credential identity first.
    items = Items(make_api())
    api = dict(items.service.api.raw)
    api["plugins"] = {"cache": {"sides": ["client"]}, "auth": {"mode": "none"}}
    api["operations"] = {name: {} for name in OPERATIONS}
    api["operations"]["whoami"] = {"plugins": {"cache": {"scope": "caller"}}}
    auth = pytest.importorskip("pyservice_auth")
    client = client_for(items.service, api, available_plugins=[Cache, auth.Auth])
    assert [placement.name for placement in client.placements] == ["auth", "cache"]
