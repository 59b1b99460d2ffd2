from __future__ import annotations

import io
import logging
import socket
import threading
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyservice import Service
from pyservice_throttle import BackendUnavailable, MemoryBackend, RedisBackend, Throttle
from throttle_helpers import FakeClock, PrivateRedis, add_handlers, closed_port_url, make_api


def build(clock: FakeClock, throttle: dict[str, Any]) -> Service:
    return add_handlers(Service(available_plugins=[Throttle], **make_api({"clock": clock, **throttle})))


def status_of(service: Service) -> tuple[int, dict[str, str]]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/get_thing",
        "REMOTE_ADDR": "10.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=int(status.split()[0]), headers=dict(headers))

    service.wsgi_application(environ, start_response)
    return started["status"], started["headers"]


def statuses(service: Service, count: int) -> list[int]:
    return [status_of(service)[0] for _ in range(count)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=400_000), min_size=1, max_size=30),
    burst=st.integers(min_value=1, max_value=5),
)
def test_the_lua_script_decides_exactly_like_the_python_arithmetic(
    redis_url: str, prefix: str, gaps: list[int], burst: int
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix, timeout=1.0)
    memory = MemoryBackend()
    key = f"k{len(gaps)}-{burst}-{sum(gaps)}"
    interval, capacity = 100_000, burst * 100_000
    now = 1_700_000_000_000_000  # a wall-clock time in µs: beyond 32 bits, inside 53
    try:
        backend.client.delete(backend.redis_key(key))
        for gap in gaps:
            now += gap
            assert backend.take(key, now, interval, capacity) == memory.take(key, now, interval, capacity)
    finally:
        backend.client.delete(backend.redis_key(key))
        backend.close()


def test_redis_keys_hide_the_identity_and_expire_when_the_bucket_is_full_again(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    try:
        backend.take("things/*/c:10.0.0.1", 1_000_000, 2_000_000, 10_000_000)
        keys = list(backend.client.scan_iter(match=prefix + "*"))
        assert len(keys) == 1
        assert b"10.0.0.1" not in keys[0]
        # It expires when the bucket is full again (2 s), never later; how much of that
        # is left when we look depends on how busy the machine is, so no lower bound.
        assert 0 < backend.client.pttl(keys[0]) <= 2000
    finally:
        backend.client.delete(*backend.client.scan_iter(match=prefix + "*"))
        backend.close()


def test_the_redis_backend_throttles_a_service(redis_url: str, prefix: str, clock: FakeClock) -> None:
    service = build(clock, {"limit": "3/minute", "backend": "redis", "redis_url": redis_url, "prefix": prefix})
    assert statuses(service, 4) == [200, 200, 200, 429]
    clock.advance(20)
    assert statuses(service, 2) == [200, 429]


def test_redis_errors_become_backend_unavailable_without_the_password() -> None:
    backend = RedisBackend(closed_port_url().replace("redis://", "redis://:s3cret-pass@"))
    with pytest.raises(BackendUnavailable) as caught:
        backend.take("k", 1, 1, 1)
    assert "s3cret-pass" not in str(caught.value)


def test_closed_port_fail_open_allows_calls_and_warns_once(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    service = build(clock, {"limit": "1/minute", "backend": "redis", "redis_url": closed_port_url()})
    with caplog.at_level(logging.WARNING, logger="pyservice.throttle"):
        assert statuses(service, 5) == [200] * 5
    assert len([r for r in caplog.records if r.name == "pyservice.throttle"]) == 1


def test_closed_port_fail_closed_answers_503(clock: FakeClock) -> None:
    service = build(
        clock, {"limit": "1/minute", "backend": "redis", "redis_url": closed_port_url(), "on_error": "closed"}
    )
    status, headers = status_of(service)
    assert status == 503
    assert "RateLimit-Remaining" not in headers


def test_a_redis_that_does_not_answer_is_given_one_connection_and_no_retry(clock: FakeClock) -> None:
    # A listener that accepts and never answers: the case a closed port cannot show.
    accepted: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(0.05)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    accepted.append(silent.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
            config = {"limit": "1/minute", "backend": "redis", "redis_url": url, "on_error": "closed"}
            service = build(clock, config)
            started = time.monotonic()
            assert status_of(service)[0] == 503
            # Generous bound: only a hang (no timeout at all) could exceed it.
            assert time.monotonic() - started < 5
        finally:
            stop.set()
            thread.join()
            for connection in accepted:
                connection.close()
    assert len(accepted) == 1


@pytest.mark.parametrize(("on_error", "while_down"), [("open", 200), ("closed", 503)])
def test_redis_stopped_applies_the_policy_and_throttling_resumes_when_it_returns(
    private_redis: PrivateRedis, clock: FakeClock, prefix: str, on_error: str, while_down: int
) -> None:
    config = {
        "limit": "2/minute",
        "backend": "redis",
        "redis_url": private_redis.url,
        "prefix": prefix,
        "on_error": on_error,
        "retry_interval": 0,
    }
    service = build(clock, config)
    assert statuses(service, 3) == [200, 200, 429]
    private_redis.stop()
    assert statuses(service, 3) == [while_down] * 3
    private_redis.start()  # empty: --save "" keeps nothing
    assert statuses(service, 3) == [200, 200, 429]


def test_the_backend_is_not_retried_within_retry_interval(private_redis: PrivateRedis, clock: FakeClock) -> None:
    config = {"limit": "2/minute", "backend": "redis", "redis_url": private_redis.url, "retry_interval": 3600}
    service = build(clock, config)
    private_redis.stop()
    assert status_of(service)[0] == 200  # fails open, and marks Redis down
    private_redis.start()
    assert statuses(service, 4) == [200] * 4  # not asked again yet: still open


def test_an_existing_redis_client_can_be_given(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    backend = RedisBackend(client=client, prefix=prefix)
    try:
        assert backend.take("k", 10, 5, 5) == (True, 15)
        assert backend.take("k", 10, 5, 5) == (False, 15)
    finally:
        client.delete(backend.redis_key("k"))
        client.close()


def test_stopping_the_service_closes_the_redis_connections_the_plugin_opened(redis_url: str, prefix: str) -> None:
    service = build(FakeClock(), {"backend": "redis", "redis_url": redis_url, "prefix": prefix, "limit": "100/second"})
    assert status_of(service)[0] == 200  # the first call starts the plugins in this process
    backend = service.plugins[0].backend
    assert backend._bounded._idle  # the call's connection, kept for the next
    service.stop()
    assert backend._bounded._idle == []
