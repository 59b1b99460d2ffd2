"""pyservice.redis: Redis round trips bounded by a call's deadline (needs the machine's Redis)."""

from __future__ import annotations

import math
import time

import pytest

redis = pytest.importorskip("redis", reason="pyservice.redis needs the redis package")

from pyservice.redis import DeadlineConnections  # noqa: E402 - after the skip


@pytest.fixture
def connections(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, socket_timeout=5)
    bounded = DeadlineConnections(pool)
    yield bounded
    bounded.close()
    pool.disconnect()


def test_a_round_trip_within_the_deadline_answers(connections):
    assert connections.call(time.monotonic() + 2, "PING") in (b"PONG", "PONG", True)


def test_a_deadline_already_passed_sends_nothing(connections):
    with pytest.raises(redis.TimeoutError, match="no time left"):
        connections.call(time.monotonic() - 1, "PING")


def test_a_connection_is_kept_for_the_next_call(connections):
    connections.call(time.monotonic() + 2, "PING")
    [kept] = connections._idle
    connections.call(time.monotonic() + 2, "PING")
    assert connections._idle == [kept]


def test_a_kept_connection_the_server_closed_is_replaced_once(connections, redis_url):
    # As after a Redis restart: the kept socket is closed by the server, and the next call still answers.
    client_id = connections.call(time.monotonic() + 2, "CLIENT", "ID")
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:
        assert admin.client_kill_filter(_id=client_id) == 1
    assert connections.call(time.monotonic() + 2, "PING") in (b"PONG", "PONG", True)
    assert connections.call(time.monotonic() + 2, "CLIENT", "ID") != client_id


def test_a_new_connection_that_fails_is_not_tried_again(redis_url):
    # Nothing listens there: the error is the caller's at once, not a second attempt's.
    pool = redis.ConnectionPool(host="127.0.0.1", port=1, socket_timeout=1)
    with pytest.raises(redis.ConnectionError):
        DeadlineConnections(pool).call(time.monotonic() + 2, "PING")


def test_without_a_deadline_the_clients_own_timeouts_bound_the_round_trip(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url)  # no socket timeout at all
    bounded = DeadlineConnections(pool)
    try:
        assert bounded.call(math.inf, "PING") in (b"PONG", "PONG", True)
        [kept] = bounded._idle
        assert kept.socket_timeout is None
    finally:
        bounded.close()
