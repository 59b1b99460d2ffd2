"""pyservice.redis: Redis round trips bounded by a call's deadline (needs the machine's Redis)."""

from __future__ import annotations

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
