"""The Redis nonce store is asked within the call's deadline: a frozen Redis cannot hold a call past it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from auth_helpers import PrivateRedis, refusal, signed, signed_service, wsgi_call
from pyservice import Service
from pyservice.testing import free_port
from pyservice_auth import Auth, NonceStore, NonceStoreUnavailable, RedisNonceStore

#: The store's own timeout in these tests: far longer than any deadline they send, so an
#: answer that comes sooner than it can only have been bounded by the call's deadline.
LONG_TIMEOUT = 5.0

_built: list[Service] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    # Connections kept for calls with a deadline are closed here, not left to the garbage collector.
    yield
    while _built:
        for plugin in _built.pop().plugins:
            if isinstance(plugin, Auth) and plugin.authenticator is not None:
                store = plugin.authenticator.nonce_store
                if store is not None:
                    store.close()


def redis_service(url: str, **auth: Any) -> Service:
    service = signed_service(nonce_store="redis", redis_url=url, redis_timeout=LONG_TIMEOUT, **auth)
    _built.append(service)
    return service


def with_deadline(seconds: str, nonce: str | None = None) -> dict[str, str]:
    # Pyservice-Timeout is one of the signed headers.
    return signed(nonce=nonce, headers={"Content-Type": "application/json", "Pyservice-Timeout": seconds})


def test_with_a_deadline_the_redis_store_records_a_nonce_once(redis_url: str, redis_prefix: str) -> None:
    store = RedisNonceStore(redis_url, prefix=redis_prefix, timeout=LONG_TIMEOUT)
    try:
        assert store.add_within("svc-a:n1", 600, 1.0) is True
        assert store.add_within("svc-a:n1", 600, 1.0) is False
        assert store.add("svc-a:n1", 600) is False  # the same key as without a deadline
        assert 590_000 < store.client.pttl(redis_prefix + "svc-a:n1") <= 600_000
    finally:
        store.close()


def test_a_replay_with_a_deadline_is_refused(redis_url: str, redis_prefix: str) -> None:
    service = redis_service(redis_url, redis_prefix=redis_prefix)
    headers = with_deadline("2", nonce="replayed-nonce-0123456789")
    assert wsgi_call(service, headers=headers)[0] == 200
    status, answer, _ = wsgi_call(service, headers=headers)
    assert (status, refusal(answer)[0]) == (401, "Unauthenticated")


def test_a_frozen_redis_refuses_a_signed_call_within_its_deadline(private_redis: PrivateRedis) -> None:
    service = redis_service(private_redis.url)
    assert wsgi_call(service, headers=with_deadline("2"))[0] == 200  # a connection open when Redis freezes
    private_redis.freeze()
    try:
        started = time.monotonic()
        status, answer, _ = wsgi_call(service, headers=with_deadline("0.3"))
        elapsed = time.monotonic() - started
    finally:
        private_redis.thaw()
    assert (status, refusal(answer)) == (503, ("AuthUnavailable", "authentication is unavailable"))
    # At least the deadline (Redis was given that long), far less than the store's own timeout.
    assert 0.3 <= elapsed < LONG_TIMEOUT / 2
    assert wsgi_call(service, headers=with_deadline("2"))[0] == 200  # Redis answers again


def test_a_frozen_redis_is_not_waited_for_on_a_new_connection_past_the_deadline(
    private_redis: PrivateRedis,
) -> None:
    # No call before the freeze: the connection is set up (and its handshake awaited) within the deadline.
    service = redis_service(private_redis.url)
    private_redis.freeze()
    try:
        started = time.monotonic()
        status = wsgi_call(service, headers=with_deadline("0.3"))[0]
        elapsed = time.monotonic() - started
    finally:
        private_redis.thaw()
    assert status == 503
    assert elapsed < LONG_TIMEOUT / 2


def test_a_deadline_that_has_passed_does_not_ask_redis() -> None:
    store = RedisNonceStore(f"redis://127.0.0.1:{free_port()}/0", timeout=LONG_TIMEOUT)
    try:
        with pytest.raises(NonceStoreUnavailable, match="deadline has passed"):
            store.add_within("svc-a:n1", 600, 0.0)
    finally:
        store.close()


def test_a_nonce_store_is_given_the_time_the_call_has_left_and_nothing_without_a_deadline() -> None:
    asked: list[tuple[str, float | None]] = []

    class Recording(NonceStore):
        shared = True

        def add(self, key: str, ttl: float) -> bool:
            asked.append(("add", None))
            return True

        def add_within(self, key: str, ttl: float, timeout: float) -> bool:
            asked.append(("add_within", timeout))
            return True

    service = signed_service(nonce_store=Recording())
    assert wsgi_call(service, headers=with_deadline("2"))[0] == 200
    assert wsgi_call(service, headers=signed())[0] == 200
    (first, left), second = asked
    assert first == "add_within"
    assert left is not None
    assert 0 < left <= 2
    assert second == ("add", None)


def test_the_default_add_within_is_add() -> None:
    class Plain(NonceStore):
        def add(self, key: str, ttl: float) -> bool:
            return key == "new"

    assert Plain().add_within("new", 1, 0.5) is True
    assert Plain().add_within("old", 1, 0.5) is False


def test_the_redis_client_is_left_usable_after_a_timeout(private_redis: PrivateRedis) -> None:
    store = RedisNonceStore(private_redis.url, timeout=LONG_TIMEOUT)
    try:
        private_redis.freeze()
        try:
            with pytest.raises(NonceStoreUnavailable):
                store.add_within("svc-a:late", 600, 0.2)
        finally:
            private_redis.thaw()
        # The late answer to the frozen command is never read as this one's.
        assert store.add_within("svc-a:fresh", 600, 1.0) is True
        assert store.add_within("svc-a:fresh", 600, 1.0) is False
        client = redis.Redis.from_url(private_redis.url)
        try:
            assert client.exists("pyservice:auth:nonce:svc-a:fresh") == 1
        finally:
            client.close()
    finally:
        store.close()


def test_stopping_the_service_closes_the_nonce_stores_connections(redis_url: str, redis_prefix: str) -> None:
    service = redis_service(redis_url, redis_prefix=redis_prefix)
    assert wsgi_call(service, headers=with_deadline("2"))[0] == 200
    [store] = [plugin.authenticator.nonce_store for plugin in service.plugins if isinstance(plugin, Auth)]
    assert store._bounded._idle  # the call's connection, kept for the next
    service.stop()
    assert store._bounded._idle == []
