from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import redis
from pyservice.testing import free_port
from pyservice_cache import RedisBackend

from .conftest import Items, PrivateRedis, make_api

pytestmark = pytest.mark.usefixtures("redis_cleanup")


def redis_items(url: str, prefix: str, *, before: Any = None, **config: Any) -> Items:
    cache = {"backend": "redis", "redis_url": url, "prefix": prefix, **config}
    return Items(make_api(cache, get_item={"scope": "public", "ttl": 60}), before=before)


def test_two_services_share_entries_through_redis(redis_url: str, prefix: str) -> None:
    first, second = redis_items(redis_url, prefix), redis_items(redis_url, prefix)
    first.items["1"] = second.items["1"] = {"name": "teapot"}
    assert first.client().get_item(id="1").item == {"name": "teapot"}
    assert second.client().get_item(id="1").item == {"name": "teapot"}
    assert (first.runs["get_item"], second.runs["get_item"]) == (1, 0)


def test_entries_are_json_with_a_px_ttl(redis_url: str, prefix: str, redis_client: redis.Redis) -> None:
    items = redis_items(redis_url, prefix)
    items.items["1"] = {"name": "teapot"}
    items.client().get_item(id="1")
    key = items.cache.key_for("get_item", {"id": "1"})
    assert redis_client.get(key) == b'A{"item":{"name":"teapot"}}'
    assert 0 < redis_client.pttl(key) <= 60_000


def test_redis_entries_expire(redis_url: str, prefix: str, redis_client: redis.Redis) -> None:
    api = make_api(
        {"backend": "redis", "redis_url": redis_url, "prefix": prefix}, get_item={"scope": "public", "ttl": 0.2}
    )
    items = Items(api)
    items.items["1"] = 1
    client = items.client()
    client.get_item(id="1")
    key = items.cache.key_for("get_item", {"id": "1"})
    for _ in range(100):
        if not redis_client.exists(key):
            break
        time.sleep(0.05)
    client.get_item(id="1")
    assert items.runs["get_item"] == 2


def test_invalidation_deletes_through_redis_for_every_service(redis_url: str, prefix: str) -> None:
    first, second = redis_items(redis_url, prefix), redis_items(redis_url, prefix)
    for items in (first, second):
        items.items.update({"1": 1, "2": 2})
    first.client().get_item(id="1")
    first.client().get_item(id="2")
    second.client().put_item(id="1", item="new")  # invalidates get_item {"id": "1"}
    assert second.invalidated == [1]
    assert second.client().get_item(id="1").item == "new"
    assert second.client().get_item(id="2").item == 2
    assert second.runs["get_item"] == 1


def test_invalidating_an_operation_scans_only_its_keys(redis_url: str, prefix: str, redis_client: redis.Redis) -> None:
    items = redis_items(redis_url, prefix)
    for index in range(30):
        items.items[str(index)] = index
        items.client().get_item(id=str(index))
    redis_client.set(f"{prefix}-other", b"untouched", px=60_000)
    assert items.cache.invalidate("get_item") == 30
    assert redis_client.get(f"{prefix}-other") == b"untouched"
    redis_client.delete(f"{prefix}-other")


def test_the_lock_is_released_only_by_its_holder(redis_url: str, prefix: str, redis_client: redis.Redis) -> None:
    backend = RedisBackend(redis_url)
    key = f"{prefix}:lock-test"
    token = backend.acquire(key, 10)
    assert token
    assert backend.acquire(key, 10) is None
    backend.release(key, "not-the-token")
    assert redis_client.get(f"lock:{key}") == token.encode()
    backend.release(key, token)
    assert redis_client.get(f"lock:{key}") is None
    backend.close()


def test_a_lock_frees_itself_after_its_ttl(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url)
    key = f"{prefix}:lock-ttl"
    assert backend.acquire(key, 0.05)
    token = None
    for _ in range(100):
        token = backend.acquire(key, 10)
        if token:
            break
        time.sleep(0.02)
    assert token
    backend.close()


def test_wait_returns_the_entry_once_stored(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url)
    key = f"{prefix}:wait"
    token = backend.acquire(key, 10)
    assert token
    timer = threading.Timer(0.1, backend.set, args=(key, b"A{}", 10))
    timer.start()
    assert backend.wait(key, 5) == b"A{}"
    timer.join()
    backend.close()


def test_wait_stops_when_the_lock_is_released_without_an_entry(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url)
    key = f"{prefix}:wait-released"
    token = backend.acquire(key, 10)
    assert token
    timer = threading.Timer(0.1, backend.release, args=(key, token))
    timer.start()
    assert backend.wait(key, 5) is None
    timer.join()
    backend.close()


def test_fifty_threads_across_two_services_run_the_handler_once(redis_url: str, prefix: str) -> None:
    runs: list[int] = []

    def slow(request: Any, context: Any) -> None:
        runs.append(1)
        time.sleep(0.3)

    services = [redis_items(redis_url, prefix, before=slow) for _ in range(2)]
    for items in services:
        items.items["1"] = {"name": "teapot"}
    clients = [services[index % 2].client() for index in range(50)]
    barrier = threading.Barrier(50)
    answers: list[Any] = []

    def call(index: int) -> None:
        barrier.wait()
        answers.append(clients[index].get_item(id="1").item)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [{"name": "teapot"}] * 50
    assert len(runs) == 1


def test_a_closed_port_degrades_to_no_caching(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    items = redis_items(url, prefix, retry_interval=0.01, warn_interval=3600)
    items.items["1"] = 1
    client = items.client()
    with caplog.at_level(logging.WARNING, logger="pyservice.cache"):
        for _ in range(5):
            assert client.get_item(id="1").item == 1
            time.sleep(0.02)  # past retry_interval: each call asks the backend again
    assert items.runs["get_item"] == 5
    assert items.cache.stats.errors >= 5
    warnings = [record.getMessage() for record in caplog.records if record.name == "pyservice.cache"]
    assert len(warnings) == 1
    assert "s3cret" not in warnings[0]


def test_a_redis_stopped_and_restarted_degrades_then_recovers(private_redis: PrivateRedis, prefix: str) -> None:
    items = redis_items(private_redis.url, prefix, retry_interval=0.05)
    items.items["1"] = 1
    client = items.client()
    client.get_item(id="1")
    client.get_item(id="1")
    assert items.runs["get_item"] == 1

    private_redis.stop()
    for _ in range(3):
        assert client.get_item(id="1").item == 1
    assert items.runs["get_item"] == 4
    assert items.cache.stats.errors >= 1

    private_redis.start()  # empty: it saves nothing
    for _ in range(100):
        time.sleep(0.06)  # past retry_interval
        client.get_item(id="1")
        before = items.runs["get_item"]
        client.get_item(id="1")
        if items.runs["get_item"] == before:
            break
    else:
        pytest.fail("the cache did not recover after Redis came back")


def test_a_frozen_redis_is_a_miss_within_the_call_deadline(private_redis: PrivateRedis, prefix: str) -> None:
    # A command sent to the frozen server costs a socket_timeout (0.5 s): a call
    # answered well under that sent none. The margins are wide for a busy machine.
    items = redis_items(private_redis.url, prefix, socket_timeout=0.5, retry_interval=2)
    items.items["1"] = 1
    annotated: list[dict[str, Any]] = []

    @items.service.plugin(scope="request")
    def observe(context: Any) -> None:
        context.process_request()
        annotated.append(dict(context.annotations))

    client = items.client()

    def timed_call(seconds_left: str) -> float:
        started = time.monotonic()
        assert client.call("get_item", {"id": "1"}, headers={"Pyservice-Timeout": seconds_left}).item == 1
        return time.monotonic() - started

    timed_call("5")  # stored
    private_redis.freeze()
    try:
        # The lookup waits one socket_timeout, then the handler answers; the
        # store and the lock are not tried on a backend that just failed.
        assert timed_call("1.5") < 1.5
        assert annotated[-1] == {"cache": "miss", "cache_error": "unavailable"}
        # Within retry_interval the backend is left alone.
        assert timed_call("1.5") < 0.4
        assert annotated[-1] == {"cache": "miss", "cache_error": "unavailable"}
        time.sleep(2.3)  # past retry_interval, counted from the failure
        # Past it, a call with less time left than a round trip (2 x 0.5 s) sends nothing.
        assert timed_call("0.9") < 0.4
        assert annotated[-1] == {"cache": "miss", "cache_error": "deadline"}
        assert (items.runs["get_item"], items.cache.stats.errors) == (4, 1)
    finally:
        private_redis.thaw()
    timed_call("5")  # past retry_interval (no call touched Redis since it failed): a hit again
    assert (items.runs["get_item"], annotated[-1]) == (4, {"cache": "hit"})


def test_stopping_the_service_closes_the_redis_connections_the_plugin_opened(redis_url: str, prefix: str) -> None:
    items = redis_items(redis_url, prefix)
    items.items["1"] = {"name": "teapot"}
    items.client().get_item(id="1")
    backend = items.service.plugins[0].backend
    assert backend._bounded._idle  # the GET's connection, kept for the next
    items.service.stop()
    assert backend._bounded._idle == []
