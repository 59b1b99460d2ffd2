from __future__ import annotations

import threading
import time
from typing import Any

from pyservice_cache import MemoryBackend
from pyservice_cache._memory import ENTRY_OVERHEAD

from .conftest import Items, make_api


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_expires_after_its_ttl() -> None:
    clock = Clock()
    backend = MemoryBackend(timer=clock)
    backend.set("k", b"v", 10)
    clock.now += 9.9
    assert backend.get("k") == b"v"
    clock.now += 0.2
    assert backend.get("k") is None


def test_ttl_expiry_runs_the_handler_again() -> None:
    clock = Clock()
    items = Items(
        make_api({"backend": MemoryBackend(timer=clock), "jitter": 0}, get_item={"scope": "public", "ttl": 30})
    )
    items.items["1"] = 1
    client = items.client()
    client.get_item(id="1")
    clock.now += 29
    client.get_item(id="1")
    assert items.runs["get_item"] == 1
    clock.now += 2
    client.get_item(id="1")
    assert items.runs["get_item"] == 2


def test_jitter_shortens_ttls_within_its_fraction() -> None:
    clock = Clock()
    backend = MemoryBackend(timer=clock)
    items = Items(make_api({"backend": backend, "jitter": 0.5}, get_item={"scope": "public", "ttl": 100}))
    client = items.client()
    for index in range(40):
        items.items[str(index)] = index
        client.get_item(id=str(index))
    clock.now += 49.9
    assert len(backend) == 40
    clock.now += 50.2
    assert len(backend) == 0


def test_jitter_spreads_expiry_of_keys_written_together() -> None:
    clock = Clock()
    backend = MemoryBackend(timer=clock)
    items = Items(make_api({"backend": backend, "jitter": 0.5}, get_item={"scope": "public", "ttl": 100}))
    client = items.client()
    for index in range(40):
        items.items[str(index)] = index
        client.get_item(id=str(index))
    clock.now += 75
    assert 0 < len(backend) < 40


def test_negative_entries_use_the_negative_ttl() -> None:
    clock = Clock()
    items = Items(
        make_api(
            {"backend": MemoryBackend(timer=clock), "jitter": 0},
            get_item={"scope": "public", "negative": ["DoesNotExist"], "negative_ttl": 2, "ttl": 100},
        )
    )
    client = items.client()
    for _ in range(2):
        try:
            client.get_item(id="1")
        except client.exceptions.DoesNotExist:
            pass
    assert items.runs["get_item"] == 1
    clock.now += 3
    items.items["1"] = "found"
    assert client.get_item(id="1").item == "found"


def test_the_entry_bound_evicts_the_least_recently_used() -> None:
    backend = MemoryBackend(max_entries=3)
    for key in "abc":
        backend.set(key, b"x", 60)
    assert backend.get("a") == b"x"  # a is now more recent than b
    backend.set("d", b"x", 60)
    assert [backend.get(key) is not None for key in "abcd"] == [True, False, True, True]
    assert backend.evictions == 1


def test_the_byte_bound_evicts_until_the_new_entry_fits() -> None:
    entry = 1000
    backend = MemoryBackend(max_bytes=3 * (entry + ENTRY_OVERHEAD))
    for key in "abc":
        backend.set(key, b"x" * entry, 60)
    backend.set("big", b"x" * (2 * entry), 60)
    assert [backend.get(key) is not None for key in ("a", "b", "c", "big")] == [False, False, True, True]
    assert backend.evictions == 2
    assert backend.size <= backend.max_bytes


def test_an_entry_larger_than_the_byte_bound_is_not_stored() -> None:
    backend = MemoryBackend(max_bytes=1000)
    backend.set("a", b"x" * 10, 60)
    backend.set("huge", b"x" * 2000, 60)
    assert backend.get("huge") is None
    assert backend.get("a") is not None


def test_expired_entries_are_not_counted_as_evictions() -> None:
    clock = Clock()
    backend = MemoryBackend(max_entries=2, timer=clock)
    backend.set("a", b"x", 1)
    backend.set("b", b"x", 1)
    clock.now += 2
    backend.set("c", b"x", 1)
    backend.set("d", b"x", 1)
    assert backend.evictions == 0


def test_evictions_reach_the_plugin_statistics() -> None:
    items = Items(make_api({"max_entries": 2}, get_item={"scope": "public"}))
    client = items.client()
    for index in range(5):
        items.items[str(index)] = index
        client.get_item(id=str(index))
    assert items.cache.stats.evictions == 3
    assert len(items.cache.backend) == 2  # type: ignore[arg-type]


def test_delete_prefix_deletes_only_that_prefix() -> None:
    backend = MemoryBackend()
    for key in ("p:1", "p:2", "q:1"):
        backend.set(key, b"x", 60)
    assert backend.delete_prefix("p:") == 2
    assert backend.get("q:1") == b"x"


def test_concurrent_writers_keep_both_bounds() -> None:
    backend = MemoryBackend(max_entries=50, max_bytes=50 * (100 + ENTRY_OVERHEAD))

    def write(worker: int) -> None:
        for index in range(300):
            backend.set(f"{worker}:{index}", b"x" * (index % 150), 60)
            backend.get(f"{worker}:{index - 1}")

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(backend) <= 50
    assert backend.size <= backend.max_bytes


def test_fifty_threads_on_a_cold_key_run_the_handler_once() -> None:
    started = threading.Event()

    def slow(request: Any, context: Any) -> None:
        started.set()
        time.sleep(0.3)

    items = Items(make_api(get_item={"scope": "public"}), before=slow)
    items.items["1"] = {"name": "teapot"}
    clients = [items.client() for _ in range(50)]
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
    assert items.runs["get_item"] == 1
    assert items.cache.stats.hits == 49


def test_waiters_share_a_negative_answer() -> None:
    def slow(request: Any, context: Any) -> None:
        time.sleep(0.3)

    items = Items(make_api(get_item={"scope": "public", "negative": ["DoesNotExist"]}), before=slow)
    clients = [items.client() for _ in range(20)]
    barrier = threading.Barrier(20)
    raised: list[str] = []

    def call(index: int) -> None:
        barrier.wait()
        try:
            clients[index].get_item(id="missing")
        except clients[index].exceptions.DoesNotExist as exc:
            raised.append(type(exc).__name__)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert raised == ["DoesNotExist"] * 20
    assert items.runs["get_item"] == 1


def test_a_call_waiting_for_another_threads_answer_stops_at_its_deadline() -> None:
    leading = threading.Event()

    def slow_first(request: Any, context: Any) -> None:
        if not leading.is_set():
            leading.set()
            time.sleep(2)

    items = Items(make_api(get_item={"scope": "public"}), before=slow_first)
    items.items["1"] = 1
    leader = threading.Thread(target=items.client().get_item, kwargs={"id": "1"})
    leader.start()
    leading.wait(5)
    started = time.monotonic()
    answer = items.client().session.post(
        "http://127.0.0.1:8080/api/v1/get_item", json={"id": "1"}, headers={"Pyservice-Timeout": "0.3"}
    )
    waited = time.monotonic() - started
    leader.join(10)
    # Answered at its deadline (the core refuses a call that starts after it), not when the leader is done.
    assert (answer.status_code, answer.json()["error"]["name"]) == (504, "DeadlineExceeded")
    assert waited < 1.5
