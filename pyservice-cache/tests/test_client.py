from __future__ import annotations

from typing import Any

import pytest
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
