"""Over real HTTP, under pyservice serve with two workers, on the real Redis and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import requests
import sqlalchemy
from conftest import PrivateRedis, psycopg_url
from proxy import CuttingProxy
from pyservice import Client, TransportError
from pyservice.testing import LiveServer
from pyservice_idempotency import REPLAYED_HEADER

HERE = Path(__file__).parent
API = {
    "name": "orders",
    "version": "v1",
    "operations": {"create_order": {}},
    "exceptions": {"OutOfStock": {"status": 409}},
    "plugins": {"idempotency": {}},
    "timeout": 10,
}


class Table:
    """A table of the test's own in the database ``test``, dropped afterwards."""

    def __init__(self, url: str) -> None:
        self.name = f"idempotency_orders_{uuid.uuid4().hex[:12]}"
        self.url = psycopg_url(url)
        self.engine = sqlalchemy.create_engine(self.url)
        with self.engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE TABLE {self.name} (id serial PRIMARY KEY, item text, pid int)"))

    def rows(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sqlalchemy.text(f"SELECT id, item, pid FROM {self.name} ORDER BY id")))

    def drop(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {self.name}"))
        self.engine.dispose()


@pytest.fixture
def table(postgresql_url: str) -> Iterator[Table]:
    table = Table(postgresql_url)
    yield table
    table.drop()


@pytest.fixture
def orders_server(
    live_server: Callable[..., LiveServer], table: Table, redis_url: str, prefix: str
) -> Callable[..., LiveServer]:
    def start(workers: int = 2, **env: str) -> LiveServer:
        settings = {
            "IDEMPOTENCY_TABLE": table.name,
            "IDEMPOTENCY_DATABASE_URL": table.url,
            "IDEMPOTENCY_REDIS_URL": redis_url,
            "IDEMPOTENCY_PREFIX": prefix,
            **env,
        }
        return live_server("live_service:service", workers=workers, cwd=HERE, env=settings)

    return start


def client_to(port: int) -> Client:
    return Client(**API, endpoint={"host": "127.0.0.1", "port": port})


def post(port: int, body: bytes, key: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(f"http://127.0.0.1:{port}/api/v1/create_order", data=body, headers=headers, timeout=30)


def test_a_retry_after_a_connection_cut_once_the_service_committed_leaves_exactly_one_row(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    server = orders_server()
    proxy = CuttingProxy(server.port, cuts=1)
    try:
        with client_to(proxy.port) as client:
            answer = client.call("create_order", {"item": "bolt"}, idempotency_key=f"order-{uuid.uuid4()}")
    finally:
        proxy.close()
    assert proxy.cut == 1  # the first answer was sent by the service and never read
    rows = table.rows()
    assert len(rows) == 1
    assert answer.id == rows[0].id  # the retry got the first call's answer


def test_the_client_plugins_own_key_makes_the_retry_after_a_cut_safe_too(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    # No key from the application: the client side of the plugin makes one, and
    # the client's retry sends it again.
    server = orders_server()
    proxy = CuttingProxy(server.port, cuts=1)
    try:
        with client_to(proxy.port) as client:
            answer = client.call("create_order", {"item": "bolt"})
    finally:
        proxy.close()
    assert proxy.cut == 1
    rows = table.rows()
    assert len(rows) == 1
    assert answer.id == rows[0].id


def test_without_the_plugins_protection_the_same_cut_and_retry_leave_two_rows(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    # The control: the same cut and the same retry, with no key to deduplicate on.
    server = orders_server()
    proxy = CuttingProxy(server.port, cuts=1)
    try:
        with pytest.raises(TransportError):
            post_through(proxy.port)
        post_through(proxy.port)
    finally:
        proxy.close()
    assert len(table.rows()) == 2


def post_through(port: int) -> None:
    try:
        post(port, b'{"item": "bolt"}', None)
    except requests.ConnectionError as exc:
        raise TransportError(str(exc), operation="create_order") from exc


def test_concurrent_duplicates_while_the_first_runs_get_409_and_later_ones_the_replay(
    orders_server: Callable[..., LiveServer], table: Table, redis_url: str, prefix: str
) -> None:
    server = orders_server()
    key = f"order-{uuid.uuid4()}"
    gate = f"{prefix}-gate"
    body = orjson.dumps({"item": "bolt", "wait_for": gate})
    store = redis.Redis.from_url(redis_url, socket_timeout=5)
    first: list[requests.Response] = []
    running = threading.Thread(target=lambda: first.append(post(server.port, body, key)))
    running.start()
    try:
        # The first call holds its claim (and its worker) until the gate opens.
        for _ in range(500):
            if any(not name.endswith(b"-gate") for name in store.scan_iter(match=f"{prefix}*")):
                break
            time.sleep(0.01)
        answers: list[requests.Response] = []
        lock = threading.Lock()
        start = threading.Barrier(7)

        def send() -> None:
            start.wait()
            answer = post(server.port, body, key)
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=send) for _ in range(7)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        store.set(gate, 1)
        running.join(60)
        store.close()
    assert [answer.status_code for answer in answers] == [409] * 7
    for answer in answers:
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["name"] == "IdempotencyKeyInUse"
    assert first[0].status_code == 200
    later = post(server.port, body, key)
    assert later.headers[REPLAYED_HEADER] == "true"
    assert later.content == first[0].content
    assert len(table.rows()) == 1


def test_concurrent_duplicates_from_the_client_all_get_the_one_answer(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    # The client side of the plugin waits out the 409s (Retry-After) and gets the replay.
    server = orders_server()
    key = f"order-{uuid.uuid4()}"
    ids: list[int] = []
    start = threading.Barrier(6)

    def send() -> None:
        with client_to(server.port) as client:
            start.wait()
            ids.append(client.call("create_order", {"item": "bolt", "sleep": 0.5}, idempotency_key=key).id)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = table.rows()
    assert len(rows) == 1
    assert ids == [rows[0].id] * 6


def test_the_same_key_with_a_different_body_is_answered_422(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    server = orders_server()
    key = f"order-{uuid.uuid4()}"
    assert post(server.port, b'{"item": "bolt"}', key).status_code == 200
    answer = post(server.port, b'{"item": "nut"}', key)
    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "kind": "exception",
        "name": "IdempotencyKeyReused",
        "message": "this Idempotency-Key was used with a different request; use a new key for a new request",
        "args": ["this Idempotency-Key was used with a different request; use a new key for a new request"],
    }
    assert len(table.rows()) == 1


def test_a_key_runs_again_once_it_expired(orders_server: Callable[..., LiveServer], table: Table) -> None:
    server = orders_server(IDEMPOTENCY_TTL="1")
    key = f"order-{uuid.uuid4()}"
    first = post(server.port, b'{"item": "bolt"}', key)
    replay = post(server.port, b'{"item": "bolt"}', key)
    assert replay.headers[REPLAYED_HEADER] == "true"
    assert replay.content == first.content
    time.sleep(1.5)
    again = post(server.port, b'{"item": "bolt"}', key)
    assert REPLAYED_HEADER not in again.headers
    assert len(table.rows()) == 2


def test_a_whitelisted_exception_is_replayed_and_its_transaction_rolled_back(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    server = orders_server()
    key = f"order-{uuid.uuid4()}"
    body = b'{"item": "bolt", "fail": "out_of_stock"}'
    first = post(server.port, body, key)
    second = post(server.port, body, key)
    assert first.status_code == second.status_code == 409
    assert second.content == first.content
    assert second.headers[REPLAYED_HEADER] == "true"
    assert table.rows() == []


def test_the_memory_backend_on_one_process_replays_a_duplicate(
    orders_server: Callable[..., LiveServer], table: Table
) -> None:
    server = orders_server(workers=1, IDEMPOTENCY_BACKEND="memory")
    key = f"order-{uuid.uuid4()}"
    with client_to(server.port) as client:
        first = client.call("create_order", {"item": "bolt"}, idempotency_key=key)
        second = client.call("create_order", {"item": "bolt"}, idempotency_key=key)
    assert first.id == second.id
    assert len(table.rows()) == 1


def test_the_memory_backend_under_two_workers_fails_at_start_up(
    orders_server: Callable[..., LiveServer],
) -> None:
    with pytest.raises(RuntimeError) as caught:
        orders_server(workers=2, IDEMPOTENCY_BACKEND="memory")
    assert "plugins.idempotency.backend" in str(caught.value)


def test_a_redis_that_is_down_gets_503_with_retry_after_and_nothing_runs(
    orders_server: Callable[..., LiveServer], table: Table, private_redis: PrivateRedis
) -> None:
    server = orders_server(IDEMPOTENCY_REDIS_URL=private_redis.url)
    key = f"order-{uuid.uuid4()}"
    assert post(server.port, b'{"item": "before"}', key).status_code == 200
    private_redis.stop()
    answer = post(server.port, b'{"item": "bolt"}', f"order-{uuid.uuid4()}")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["kind"] == "exception"
    assert answer.json()["error"]["name"] == "IdempotencyUnavailable"
    # A call without a key does not need the store.
    assert post(server.port, b'{"item": "unkeyed"}', None).status_code == 200
    assert [row.item for row in table.rows()] == ["before", "unkeyed"]
