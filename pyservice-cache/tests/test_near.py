"""The near cache: each process's copies of what it read from the shared backend, for local_ttl at most."""

from __future__ import annotations

import pytest
from pyservice import ApiError, Service
from pyservice_cache import Cache, MemoryBackend
from pyservice_cache._near import NearBackend

from .conftest import Items, make_api


class Counted(MemoryBackend):
    """A stand-in shared backend that counts what it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return super().get(key)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_copy_is_served_without_asking_the_shared_backend() -> None:
    shared = Counted()
    near = NearBackend(shared, ttl=1.0)
    shared.set("k", b"v", 60)
    assert near.get("k") == b"v"
    assert near.get("k") == b"v"
    assert shared.gets == 1


def test_a_copy_is_served_no_longer_than_its_ttl() -> None:
    shared, clock = Counted(), Clock()
    near = NearBackend(shared, ttl=1.0, timer=clock)
    shared.set("k", b"old", 60)
    assert near.get("k") == b"old"
    shared.set("k", b"new", 60)  # another process stores anew
    assert near.get("k") == b"old"  # the documented staleness, within ttl
    clock.now = 1.5
    assert near.get("k") == b"new"


def test_a_copy_never_outlives_the_entry_stored_through_it() -> None:
    shared, clock = Counted(), Clock()
    near = NearBackend(shared, ttl=10.0, timer=clock)
    near.set("k", b"v", 0.5)
    clock.now = 0.6
    assert near.near.get("k") is None


def test_deleting_through_it_removes_the_copy_and_the_shared_entry() -> None:
    shared = Counted()
    near = NearBackend(shared, ttl=10.0)
    near.set("items:1", b"v", 60)
    assert near.delete_prefix("items:") == 1
    assert near.get("items:1") is None
    assert shared.get("items:1") is None


def test_local_ttl_with_the_memory_backend_is_refused_naming_the_key() -> None:
    with pytest.raises(ApiError) as raised:
        Service(available_plugins=[Cache], **make_api({"backend": "memory", "local_ttl": 1}))
    assert raised.value.key == "plugins.cache.local_ttl"


@pytest.mark.usefixtures("redis_cleanup")
def test_local_ttl_puts_copies_in_front_of_redis(redis_url: str, prefix: str) -> None:
    items = Items(
        make_api(
            {"backend": "redis", "redis_url": redis_url, "prefix": prefix, "local_ttl": 5},
            get_item={"scope": "public", "ttl": 60},
        )
    )
    items.items["1"] = {"name": "teapot"}
    client = items.client()
    try:
        assert client.get_item(id="1").item == {"name": "teapot"}
        backend = items.service.plugins[0].backend
        assert isinstance(backend, NearBackend)
        backend.shared.delete_prefix(prefix)  # as another process invalidating would
        assert client.get_item(id="1").item == {"name": "teapot"}
        assert items.runs["get_item"] == 1  # served from this process's copy
    finally:
        items.service.stop()  # closes the plugin's Redis connections
