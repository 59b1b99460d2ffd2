"""The backend is asked within the call's deadline: a frozen Redis cannot hold a call past it."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyservice import Service
from pyservice_throttle import Backend, BackendUnavailable, RedisBackend, Throttle
from throttle_helpers import FakeClock, PrivateRedis, add_handlers, closed_port_url, make_api

#: The backend's own timeout in these tests: far longer than any deadline they send, so an
#: answer that comes sooner than it can only have been bounded by the call's deadline.
LONG_TIMEOUT = 5.0


_built: list[Service] = []


@pytest.fixture(autouse=True)
def _close_backends() -> Iterator[None]:
    # Connections kept for calls with a deadline are closed here, not left to the garbage collector.
    yield
    while _built:
        for plugin in _built.pop().plugins:
            if isinstance(plugin, Throttle) and plugin.backend is not None:
                plugin.backend.close()


def build(clock: FakeClock, throttle: dict[str, Any]) -> Service:
    service = add_handlers(Service(available_plugins=[Throttle], **make_api({"clock": clock, **throttle})))
    _built.append(service)
    return service


def call(service: Service, deadline: str | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/get_thing",
        "REMOTE_ADDR": "10.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    if deadline is not None:
        environ["HTTP_PYSERVICE_TIMEOUT"] = deadline
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=int(status.split()[0]), headers=dict(headers))

    body = b"".join(service.wsgi_application(environ, start_response))
    return started["status"], started["headers"], json.loads(body)


def statuses(service: Service, count: int, deadline: str | None = None) -> list[int]:
    return [call(service, deadline)[0] for _ in range(count)]


def redis_config(url: str, prefix: str, **extra: Any) -> dict[str, Any]:
    return {"limit": "3/minute", "backend": "redis", "redis_url": url, "prefix": prefix, **extra}


def test_with_a_deadline_redis_decides_and_counts_as_without_one(redis_url: str, prefix: str, clock: FakeClock) -> None:
    # A deadline shorter than the backend's timeout takes the bounded round trip.
    service = build(clock, redis_config(redis_url, prefix, timeout=LONG_TIMEOUT))
    answers = [call(service, deadline="2") for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [headers["RateLimit-Remaining"] for _, headers, _ in answers] == ["2", "1", "0", "0"]
    assert answers[-1][1]["Retry-After"] == "20"
    assert statuses(service, 1) == [429]  # the same budget without a deadline


def test_the_bounded_round_trip_loads_the_script_again_when_redis_lost_it(
    private_redis: PrivateRedis, prefix: str, clock: FakeClock
) -> None:
    service = build(clock, redis_config(private_redis.url, prefix, timeout=LONG_TIMEOUT))
    assert statuses(service, 1, deadline="2") == [200]
    backend = RedisBackend(private_redis.url)
    try:
        backend.client.script_flush()  # a private server: nobody else's scripts
    finally:
        backend.close()
    assert statuses(service, 3, deadline="2") == [200, 200, 429]


@pytest.mark.parametrize(
    ("on_error", "status", "error"),
    [
        # The policy lets the call through; its deadline has passed, so the core answers 504.
        ("open", 504, "DeadlineExceeded"),
        ("closed", 503, "ThrottleUnavailable"),
    ],
)
def test_a_frozen_redis_gets_the_policy_within_the_calls_deadline(
    private_redis: PrivateRedis, prefix: str, clock: FakeClock, on_error: str, status: int, error: str
) -> None:
    config = redis_config(private_redis.url, prefix, timeout=LONG_TIMEOUT, on_error=on_error, retry_interval=0)
    service = build(clock, config)
    assert statuses(service, 1) == [200]  # a pooled connection, open when Redis freezes
    private_redis.freeze()
    try:
        started = time.monotonic()
        answered = call(service, deadline="0.3")
        elapsed = time.monotonic() - started
    finally:
        private_redis.thaw()
    assert answered[0] == status
    assert answered[2]["error"]["name"] == error
    assert "RateLimit-Remaining" not in answered[1]
    # At least the deadline (Redis was given that long), far less than the backend's own timeout.
    assert 0.3 <= elapsed < LONG_TIMEOUT / 2
    # Redis answers again and decides every call. The script sent to the frozen server runs
    # when it resumes, so the call that timed out may count: the limit errs on the strict side.
    after = [call(service) for _ in range(3)]
    assert all("RateLimit-Remaining" in headers for _, headers, _ in after)
    assert [status for status, _, _ in after][::2] == [200, 429]


def test_a_frozen_redis_with_a_deadline_past_the_timeout_gets_the_policy_at_the_timeout(
    private_redis: PrivateRedis, prefix: str, clock: FakeClock
) -> None:
    config = redis_config(private_redis.url, prefix, timeout=0.2, on_error="closed", retry_interval=0)
    service = build(clock, config)
    assert statuses(service, 1) == [200]
    private_redis.freeze()
    try:
        started = time.monotonic()
        answered = call(service, deadline="30")
        elapsed = time.monotonic() - started
    finally:
        private_redis.thaw()
    assert answered[0] == 503
    assert elapsed < 15  # the timeout bounded it, not the 30 s deadline


def test_a_frozen_redis_is_not_waited_for_on_a_new_connection_past_the_deadline(
    private_redis: PrivateRedis, prefix: str, clock: FakeClock
) -> None:
    # No call before the freeze: the connection is set up (and its handshake awaited) within the deadline.
    service = build(clock, redis_config(private_redis.url, prefix, timeout=LONG_TIMEOUT, on_error="closed"))
    private_redis.freeze()
    try:
        started = time.monotonic()
        status = call(service, deadline="0.3")[0]
        elapsed = time.monotonic() - started
    finally:
        private_redis.thaw()
    assert status == 503
    assert elapsed < LONG_TIMEOUT / 2


def test_a_call_whose_own_deadline_ran_out_does_not_switch_the_backend_off(
    private_redis: PrivateRedis, prefix: str, clock: FakeClock
) -> None:
    # Calls sent with tiny deadlines must not turn throttling off for everyone (fail open for
    # retry_interval), as a Redis that really failed does.
    config = redis_config(private_redis.url, prefix, timeout=LONG_TIMEOUT, retry_interval=3600)
    service = build(clock, config)
    private_redis.freeze()
    try:
        assert call(service, deadline="0.1")[0] == 504
    finally:
        private_redis.thaw()
    # Redis is asked again at once (the headers come from its answer), not skipped for an hour.
    after = [call(service) for _ in range(4)]
    assert all("RateLimit-Remaining" in headers for _, headers, _ in after)
    assert after[0][0] == 200
    assert after[-1][0] == 429


def test_a_deadline_that_has_passed_does_not_ask_redis() -> None:
    backend = RedisBackend(closed_port_url(), timeout=LONG_TIMEOUT)
    try:
        with pytest.raises(BackendUnavailable, match="deadline has passed"):
            backend.take_within("k", 1, 1, 1, 0.0)
    finally:
        backend.close()


class RecordingBackend(Backend):
    """Says yes to everything, and records how each call was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float | None]] = []

    def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        self.asked.append(("take", None))
        return True, now + interval

    def take_within(self, key: str, now: int, interval: int, capacity: int, timeout: float) -> tuple[bool, int]:
        self.asked.append(("take_within", timeout))
        return True, now + interval


def test_a_backend_is_given_the_time_the_call_has_left_and_nothing_without_a_deadline(clock: FakeClock) -> None:
    backend = RecordingBackend()
    service = build(clock, {"limit": "3/minute", "backend": backend})
    call(service, deadline="2")
    call(service)
    (first, left), second = backend.asked
    assert first == "take_within"
    assert left is not None
    assert 0 < left <= 2
    assert second == ("take", None)


def test_the_default_take_within_is_take(clock: FakeClock) -> None:
    class Plain(Backend):
        def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
            return False, now + 7

    assert Plain().take_within("k", 10, 1, 1, 0.5) == (False, 17)
