from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest
import redis
from conftest import FakeClock, PrivateRedis, api
from pyservice import Service
from pyservice.testing import client_for
from pyservice_idempotency import BackendUnavailable, MemoryBackend, RedisBackend

FAR = 1e12  # a deadline that never comes, for the memory backend's steps


def later(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


# -- memory --------------------------------------------------------------------


def test_memory_claims_a_free_key_once(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    assert backend.claim("k", b"mine", 10, FAR) is None
    assert backend.claim("k", b"theirs", 10, FAR) == b"mine"


def test_memory_completes_only_the_claim_it_holds(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.claim("k", b"mine", 10, FAR)
    assert not backend.complete("k", b"other", b"answer", 60, FAR)
    assert backend.complete("k", b"mine", b"answer", 60, FAR)
    assert backend.claim("k", b"x", 10, FAR) == b"answer"


def test_memory_releases_only_the_claim_it_holds(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.claim("k", b"mine", 10, FAR)
    backend.release("k", b"other", FAR)
    assert backend.claim("k", b"x", 10, FAR) == b"mine"
    backend.release("k", b"mine", FAR)
    assert backend.claim("k", b"x", 10, FAR) is None


def test_memory_claims_expire(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.claim("k", b"mine", 10, FAR)
    clock.advance(10)
    assert backend.claim("k", b"next", 10, FAR) is None
    assert not backend.complete("k", b"mine", b"answer", 60, FAR)


def test_memory_drops_the_oldest_beyond_max_entries_and_counts_it(clock: FakeClock) -> None:
    backend = MemoryBackend(max_entries=2, clock=clock)
    for key in ("a", "b", "c"):
        backend.claim(key, b"v", 10, FAR)
    assert len(backend) == 2
    assert backend.evictions == 1
    assert backend.claim("a", b"again", 10, FAR) is None


def test_memory_stays_within_max_bytes(clock: FakeClock) -> None:
    backend = MemoryBackend(max_bytes=100, clock=clock)
    for n in range(10):
        backend.claim(f"k{n}", b"x" * 30, 10, FAR)
    assert len(backend) == 3  # 3 x (2 + 30) bytes


def test_memory_grants_one_claim_among_many_threads() -> None:
    backend = MemoryBackend()
    results: list[bytes | None] = []
    start = threading.Barrier(20)

    def claim(n: int) -> None:
        start.wait()
        results.append(backend.claim("k", str(n).encode(), 10, FAR))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 1


# -- Redis ---------------------------------------------------------------------


@pytest.fixture
def backend(redis_url: str) -> Any:
    backend = RedisBackend(redis_url, timeout=2.0)
    yield backend
    backend.close()


def test_redis_claims_a_free_key_once(backend: RedisBackend, prefix: str) -> None:
    assert backend.claim(prefix + "k", b"mine", 10, later()) is None
    assert backend.claim(prefix + "k", b"theirs", 10, later()) == b"mine"


def test_redis_completes_only_the_claim_it_holds(backend: RedisBackend, prefix: str) -> None:
    key = prefix + "k"
    backend.claim(key, b"mine", 10, later())
    assert not backend.complete(key, b"other", b"answer", 60, later())
    assert backend.complete(key, b"mine", b"answer\n{}", 60, later())
    assert backend.claim(key, b"x", 10, later()) == b"answer\n{}"


def test_redis_releases_only_the_claim_it_holds(backend: RedisBackend, prefix: str) -> None:
    key = prefix + "k"
    backend.claim(key, b"mine", 10, later())
    backend.release(key, b"other", later())
    assert backend.claim(key, b"x", 10, later()) == b"mine"
    backend.release(key, b"mine", later())
    assert backend.claim(key, b"x", 10, later()) is None


def test_redis_records_expire_with_their_ttl(backend: RedisBackend, prefix: str, redis_url: str) -> None:
    key = prefix + "k"
    backend.claim(key, b"mine", 0.05, later())
    store = redis.Redis.from_url(redis_url)
    try:
        ttl = store.pttl(key)
        assert 0 < ttl <= 50
        time.sleep(0.2)
        assert backend.claim(key, b"next", 10, later()) is None
    finally:
        store.close()


def test_redis_grants_one_claim_among_many_threads(backend: RedisBackend, prefix: str) -> None:
    results: list[bytes | None] = []
    start = threading.Barrier(20)

    def claim(n: int) -> None:
        start.wait()
        results.append(backend.claim(prefix + "k", str(n).encode(), 10, later()))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 1


def test_redis_that_lost_its_scripts_loads_them_again(private_redis: PrivateRedis) -> None:
    backend = RedisBackend(private_redis.url, timeout=2.0)
    admin = redis.Redis(port=private_redis.port)
    try:
        backend.claim("a", b"x", 10, later())
        admin.script_flush()
        assert backend.claim("b", b"y", 10, later()) is None
    finally:
        admin.close()
        backend.close()


def test_redis_that_stopped_answering_fails_the_step_at_the_deadline(private_redis: PrivateRedis) -> None:
    backend = RedisBackend(private_redis.url, timeout=5.0)
    try:
        backend.claim("warm", b"x", 10, later())  # a pooled connection, then the server freezes
        assert private_redis.process is not None
        private_redis.process.send_signal(signal.SIGSTOP)
        with pytest.raises(BackendUnavailable) as caught:
            backend.claim("k", b"x", 10, time.monotonic() + 0.2)
        assert caught.value.late
    finally:
        if private_redis.process is not None:
            private_redis.process.send_signal(signal.SIGCONT)
        backend.close()


def test_redis_that_is_down_fails_the_step(private_redis: PrivateRedis) -> None:
    backend = RedisBackend(private_redis.url, timeout=1.0)
    private_redis.stop()
    try:
        with pytest.raises(BackendUnavailable) as caught:
            backend.claim("k", b"x", 10, later())
        assert not caught.value.late
        assert str(private_redis.port) in str(caught.value)
    finally:
        backend.close()


def test_two_services_sharing_redis_answer_a_duplicate_from_the_other(redis_url: str, prefix: str) -> None:
    runs = []

    def build() -> Service:
        service = Service(**api({"backend": "redis", "redis_url": redis_url, "prefix": prefix, "timeout": 2.0}))

        @service.operation("create_order")
        def create_order(request: Any, response: Any, context: Any) -> None:
            runs.append(1)
            response.id = len(runs)

        return service

    one, two = build(), build()
    first = client_for(one).call("create_order", {"item": 1}, idempotency_key="k-1")
    second = client_for(two).call("create_order", {"item": 1}, idempotency_key="k-1")
    assert first.id == second.id == 1
    assert len(runs) == 1


def test_the_redis_readiness_check_names_no_url(private_redis: PrivateRedis) -> None:
    service = Service(**api({"backend": "redis", "redis_url": private_redis.url}))
    assert service.readiness.run() == {"idempotency": None}
    private_redis.stop()
    problem = service.readiness.run()["idempotency"]
    assert problem is not None
    assert "Redis does not answer" in problem
    assert str(private_redis.port) not in problem


def test_a_frozen_redis_answers_a_keyed_call_503_by_its_deadline(private_redis: PrivateRedis) -> None:
    service = Service(**api({"backend": "redis", "redis_url": private_redis.url, "timeout": 30.0}))

    @service.operation("create_order")
    def create_order(request: Any, response: Any, context: Any) -> None:
        response.ok = True

    session = client_for(service).session
    url = "http://127.0.0.1:8080/api/v1/create_order"
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k-1", "Pyservice-Timeout": "0.3"}
    assert session.post(url, data=b"{}", headers=headers).status_code == 200
    assert private_redis.process is not None
    private_redis.process.send_signal(signal.SIGSTOP)
    try:
        # Redis's own timeout here is 30 s: only the call's deadline can end the wait.
        answer = session.post(url, data=b"{}", headers={**headers, "Idempotency-Key": "k-2"})
    finally:
        private_redis.process.send_signal(signal.SIGCONT)
    assert answer.status_code == 503
    assert answer.json()["error"]["name"] == "IdempotencyUnavailable"
    # The deadline ended the wait, not a failure of Redis: the next call asks Redis again.
    assert session.post(url, data=b"{}", headers={**headers, "Idempotency-Key": "k-3"}).status_code == 200
