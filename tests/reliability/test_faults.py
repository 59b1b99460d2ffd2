"""Faults: the backends stopped and started again, a downstream that hangs or resets.

Each part behaves as its package documents (fail open or closed, degrade, a
clear error), recovers without a restart of the service, and loses no
acknowledged write. The servers stopped here are private ones (servers.py).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pyservice
import pytest
import requests
from pyservice.testing import LiveServer

from .servers import PrivatePostgres, PrivateRedis, private

APPS = Path(__file__).parent / "apps"


def eventually(check, seconds=15.0):
    """Poll ``check`` until it returns something true; its last value otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture
def redis():
    server = private(PrivateRedis)
    server.start()
    yield server
    server.close()


def post(server, operation, body=b"{}"):
    return requests.post(
        f"{server.url}/api/v1/{operation}", data=body, headers={"Content-Type": "application/json"}, timeout=5
    )


def cache_hits(server):
    first, second = post(server, "cached").json(), post(server, "cached").json()
    return first == second


def counted(server):
    answer = post(server, "limited")
    return answer.status_code == 200 and "RateLimit-Remaining" in answer.headers


def test_redis_stopped_and_restarted_throttle_fails_open_and_cache_degrades(redis):
    env = {"REDIS_URL": redis.url, "ON_ERROR": "open"}
    with LiveServer("redis_app:service", workers=2, cwd=APPS, env=env) as server:
        assert counted(server)
        assert cache_hits(server)

        redis.stop()
        started = time.monotonic()
        for _ in range(20):
            assert post(server, "limited").status_code == 200  # allowed, uncounted
            assert post(server, "cached").status_code == 200  # computed, uncached
        # Each call waits at most the short backend timeout, never a hang.
        assert time.monotonic() - started < 20
        assert not cache_hits(server)

        redis.start()  # empty, on the same port
        assert eventually(lambda: counted(server))
        assert eventually(lambda: cache_hits(server))
        assert "Traceback" not in server.output()


def test_redis_stopped_and_restarted_throttle_fails_closed_then_recovers(redis):
    env = {"REDIS_URL": redis.url, "ON_ERROR": "closed"}
    with LiveServer("redis_app:service", workers=2, cwd=APPS, env=env) as server:
        assert counted(server)
        redis.stop()
        refused = post(server, "limited")
        assert refused.status_code == 503
        assert refused.json()["error"]["name"] == "ThrottleUnavailable"
        assert int(refused.headers["Retry-After"]) >= 1
        redis.start()
        assert eventually(lambda: counted(server))


@pytest.fixture(scope="module")
def postgres():
    server = private(PrivatePostgres)
    server.start()
    yield server
    server.close()


def test_postgresql_restarted_while_writing_loses_no_acknowledged_write(postgres):
    from sqlalchemy import create_engine

    engine = create_engine(postgres.url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS entries (id varchar(64) PRIMARY KEY)")
    engine.dispose()
    acknowledged: set[str] = set()
    outcomes: dict[str, int] = {}
    stop = threading.Event()

    def writer(server):
        while not stop.is_set():
            entry = uuid.uuid4().hex
            try:
                answer = post(server, "write", b'{"id": "%s"}' % entry.encode())
            except requests.RequestException:
                outcomes["transport"] = outcomes.get("transport", 0) + 1
                continue
            outcomes[answer.status_code] = outcomes.get(answer.status_code, 0) + 1
            if answer.status_code == 200:
                acknowledged.add(answer.json()["id"])
            else:
                assert answer.json()["error"]["name"] == "DatabaseUnavailable", answer.text

    with LiveServer("pg_app:service", workers=2, cwd=APPS, env={"DATABASE_URL": postgres.url}) as server:
        threads = [threading.Thread(target=writer, args=(server,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        postgres.stop()
        time.sleep(1.0)
        postgres.start()
        # Writes resume without restarting the service.
        before = len(acknowledged)
        assert eventually(lambda: len(acknowledged) > before + 20)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        stored = set(post(server, "count").json()["ids"])
        assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged writes are missing"
        assert outcomes.get(503, 0) > 0, outcomes  # the outage was seen, and answered as such
        assert set(outcomes) <= {200, 503}, outcomes
        assert "Traceback" not in server.output()


class Downstream:
    """A TCP server whose behaviour the test switches: hang, reset, or answer."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.mode = "hang"
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "hang":
                self.held.append(connection)
            elif self.mode == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                connection.close()
            else:
                connection.recv(65536)
                body = b'{"ok":true}'
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n%s" % (len(body), body)
                )
                connection.close()

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def downstream():
    server = Downstream()
    yield server
    server.close()


def downstream_client(downstream):
    return pyservice.Client(
        operations={"read": {"idempotent": True}, "write": {}},
        endpoint={"port": downstream.port},
        # The read timeout bounds the whole call (retries included); each attempt gets 0.5 s of it.
        timeout={"connect": 1, "read": 3},
        retries=2,
        retry={"attempt_timeout": 0.5},
    )


def test_a_downstream_that_hangs_is_a_timeout_then_recovers(downstream):
    client = downstream_client(downstream)
    started = time.monotonic()
    with pytest.raises(pyservice.CallTimeout):
        client.write()
    assert downstream.accepted == 1  # not idempotent: never retried
    with pytest.raises(pyservice.CallTimeout):
        client.read()
    assert downstream.accepted == 4  # idempotent: tried three times
    assert time.monotonic() - started < 10
    downstream.mode = "answer"
    assert client.read().ok is True


def test_a_downstream_that_resets_connections_is_a_transport_error_then_recovers(downstream):
    downstream.mode = "reset"
    client = downstream_client(downstream)
    with pytest.raises(pyservice.TransportError):
        client.write()
    with pytest.raises(pyservice.TransportError):
        client.read()
    downstream.mode = "answer"
    assert client.write().ok is True


def test_redis_stopped_and_restarted_signed_requests_fail_closed_then_recover(redis, monkeypatch):
    secret = "s" * 48
    monkeypatch.setenv("NONCE_KEY_SECRET", secret)
    env = {"REDIS_URL": redis.url, "NONCE_KEY_SECRET": secret}
    with LiveServer("nonce_app:service", workers=2, cwd=APPS, env=env) as server:
        client = pyservice.Client(
            operations=["ping"],
            endpoint={"port": server.port},
            plugins={"auth": {"mode": "signed", "key_id": "faults", "secret_env": "NONCE_KEY_SECRET"}},
        )
        assert client.ping().caller == "faults"
        redis.stop()
        # Without its nonce store the service cannot refuse a replay, so it refuses every call.
        with pytest.raises(client.exceptions.AuthUnavailable):
            client.ping()
        redis.start()

        def signed_call_passes():
            try:
                return client.ping().caller == "faults"
            except client.exceptions.AuthUnavailable:
                return False

        assert eventually(signed_call_passes)
        assert "Traceback" not in server.output()
