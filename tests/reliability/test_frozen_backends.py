"""Frozen backends (SIGSTOP, then SIGCONT) under ``pyservice serve``'s own server, over real HTTP.

A frozen server's kernel still acknowledges TCP, so nothing but the call's
deadline ends a call waiting for it. With 2 workers and calls that each send
a deadline (``Pyservice-Timeout``), while a private PostgreSQL is frozen:
every call is answered by its deadline plus a margin (``DatabaseUnavailable``,
or ``ServiceUnavailable`` from the arbiter while every worker is busy),
never a dropped connection or a 500; readiness answers 503 within a few
seconds although the workers are busy; after SIGCONT calls succeed again,
exactly the acknowledged writes are stored and no session of ours is left
idle in a transaction. While a private Redis is frozen, the cache serves
misses from the handler and the throttle answers by its ``on_error``, each
within the deadline; after SIGCONT both use Redis again.

The calls of the main run each take a new connection, which waits for a free
worker or the arbiter. A call on a connection a worker already holds (kept
alive, or accepted in the same batch as a call that then got stuck) waits
unread for the stuck call; its deadline still counts from when it arrived,
which the server learns from the kernel's receive stamps, so it too is
answered by its deadline (``DeadlineExceeded`` if none of it is left).

The servers frozen here are private ones (servers.py), never the machine's.
Bounds are generous: a busy machine may be slow, never unbounded.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyservice
import pytest
import requests
from pyservice.testing import LiveServer

from .servers import PrivatePostgres, PrivateRedis, private

APPS = Path(__file__).parent / "apps"
#: The deadline each call sends, in seconds.
DEADLINE = 2.0
#: What an answer may take past its deadline on a busy machine (a wait for a free worker included).
MARGIN = 1.5
#: Seconds every worker must have been in a call before the arbiter answers new connections itself.
BUSY_TIMEOUT = 0.5
#: How long PostgreSQL stays frozen: two deadlines, so calls start before it and during it.
FROZEN_FOR = 2 * DEADLINE
#: Seconds each caller waits between its calls: enough calls to see, little load on the machine.
PACE = 0.02
#: What each caller of the main PostgreSQL run calls.
CALLERS_OPERATIONS = ("write", "write", "read")
CALLERS = len(CALLERS_OPERATIONS)
APPLICATION = f"reliability-frozen-{os.getpid()}"
#: Readiness must answer within the api's health.timeout (2 s by default) and a wait for the arbiter.
PROBE_BOUND = 5.0


def eventually(check, seconds=15.0):
    """Poll ``check`` until it returns something true; its last value otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@dataclass
class Outcome:
    operation: str
    key: str
    started: float
    seconds: float
    status: int | None  # None: no HTTP answer
    name: str  # "ok", the error's name, or the client error's class


@dataclass
class FrozenRun:
    outcomes: list[Outcome] = field(default_factory=list)
    frozen_at: float = 0.0
    thawed_at: float = 0.0
    probe: tuple[float, int, dict] | None = None
    stored: set[str] = field(default_factory=set)
    sessions_after: list[str] = field(default_factory=list)
    output: str = ""

    def summary(self) -> str:
        by_name: dict[str, list[float]] = {}
        for o in self.outcomes:
            by_name.setdefault(o.name, []).append(o.seconds)
        parts = [f"{name} x{len(times)} max {max(times):.2f} s" for name, times in sorted(by_name.items())]
        late = sum(o.seconds >= DEADLINE + MARGIN for o in self.outcomes)
        parts.append(f"{late} answered later than {DEADLINE + MARGIN:g} s")
        if self.probe is not None:
            parts.append(f"readiness {self.probe[1]} in {self.probe[0]:.2f} s")
        return "; ".join(parts)

    def written(self, name: str) -> set[str]:
        return {o.key for o in self.outcomes if o.operation == "write" and o.name == name}

    def refused_writes(self) -> set[str]:
        return {o.key for o in self.outcomes if o.operation == "write" and o.status not in (None, 200)}


def timed_call(
    client: pyservice.Client, operation: str, fields: dict, *, keep_alive: bool = False, deadline: float = DEADLINE
) -> tuple[float, int | None, str]:
    """One call with the test's deadline: ``(seconds, status, outcome)``.

    The deadline travels in ``Pyservice-Timeout``; the client waits longer
    than it, so an answer that came late is measured, not cut off. Each call
    has a connection of its own (``Connection: close``): a request waits for a
    free worker (or the arbiter) in the listen queue, never behind a call on
    a kept-alive connection of a busy worker.
    """
    headers = {"Pyservice-Timeout": f"{deadline:g}"}
    if not keep_alive:
        headers["Connection"] = "close"
    started = time.monotonic()
    try:
        client.call(operation, fields, timeout=deadline + 3 * MARGIN, headers=headers)
        status, name = 200, "ok"
    except pyservice.ServiceError as error:
        status, name = error.status, error.name
    except pyservice.ClientError as error:
        status, name = None, type(error).__name__
    return time.monotonic() - started, status, name


def session_states(server: PrivatePostgres) -> list[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(server.url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            query = text("SELECT state FROM pg_stat_activity WHERE application_name = :name")
            return list(connection.scalars(query, {"name": APPLICATION}))
    finally:
        engine.dispose()


def stored_ids(server: PrivatePostgres) -> set[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(server.url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT id FROM entries")))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres():
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    server = private(PrivatePostgres)
    try:
        server.start()
        engine = create_engine(server.url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE entries (id varchar(64) PRIMARY KEY)")
        engine.dispose()
        yield server
    finally:
        server.close()  # thawed first


@pytest.fixture(scope="module")
def frozen_postgres_run(postgres) -> FrozenRun:
    """Two writers and a reader over HTTP while a private PostgreSQL runs, freezes and thaws; what they saw."""
    run = FrozenRun()
    try:
        env = {"DATABASE_URL": postgres.url, "APPLICATION_NAME": APPLICATION}
        with LiveServer("frozen_pg_app:service", workers=2, cwd=APPS, env=env, busy_timeout=BUSY_TIMEOUT) as server:
            stop = threading.Event()
            lock = threading.Lock()

            def caller(operation: str) -> None:
                client = pyservice.Client(operations=["write", "read"], endpoint={"port": server.port}, retries=0)
                while not stop.is_set():
                    key = uuid.uuid4().hex
                    fields = {"id": key} if operation == "write" else {}
                    started = time.monotonic()
                    seconds, status, name = timed_call(client, operation, fields)
                    with lock:
                        run.outcomes.append(Outcome(operation, key, started, seconds, status, name))
                    stop.wait(PACE)
                client.close()

            threads = [threading.Thread(target=caller, args=(op,)) for op in CALLERS_OPERATIONS]
            for thread in threads:
                thread.start()
            try:
                time.sleep(1.0)
                postgres.freeze()
                run.frozen_at = time.monotonic()
                try:
                    time.sleep(1.0)  # the workers are in calls to the frozen database by now
                    started = time.monotonic()
                    answer = requests.get(f"{server.url}/health/ready", timeout=3 * PROBE_BOUND)
                    run.probe = (time.monotonic() - started, answer.status_code, answer.json())
                    time.sleep(max(0.0, run.frozen_at + FROZEN_FOR - time.monotonic()))
                finally:
                    postgres.thaw()
                    run.thawed_at = time.monotonic()

                def succeeded_after_thaw() -> bool:
                    with lock:
                        return any(o.name == "ok" and o.started > run.thawed_at for o in run.outcomes)

                eventually(succeeded_after_thaw, seconds=10.0)
                # Calls that start once those in flight at the thaw have ended.
                time.sleep(max(0.5, run.thawed_at + DEADLINE + 1.0 - time.monotonic()))
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=3 * (DEADLINE + 3 * MARGIN))
            # The server ends the sessions whose sockets the watchdog shut once it runs again.
            eventually(lambda: "idle in transaction" not in session_states(postgres), seconds=10.0)
            run.sessions_after = session_states(postgres)
            run.stored = stored_ids(postgres)
            run.output = server.output()
    finally:
        postgres.thaw()
    print(f"\nfrozen PostgreSQL, {DEADLINE:g} s deadlines: {run.summary()}")
    return run


def during_freeze(run: FrozenRun) -> list[Outcome]:
    return [o for o in run.outcomes if o.started + o.seconds > run.frozen_at and o.started < run.thawed_at]


def test_a_frozen_postgresql_is_seen_by_calls_over_http(frozen_postgres_run: FrozenRun) -> None:
    names = {o.name for o in during_freeze(frozen_postgres_run)}
    assert "DatabaseUnavailable" in names, names


def test_every_call_to_a_frozen_postgresql_is_answered_within_its_deadline(frozen_postgres_run: FrozenRun) -> None:
    slowest = max(frozen_postgres_run.outcomes, key=lambda o: o.seconds)
    assert slowest.seconds < DEADLINE + MARGIN, slowest


def test_every_call_to_a_frozen_postgresql_gets_an_answer_in_the_protocols_503_shape(
    frozen_postgres_run: FrozenRun,
) -> None:
    # A success came before the freeze or after it; the rest is a 503 naming why.
    answered = {(o.status, o.name) for o in frozen_postgres_run.outcomes}
    # A call that waited unread behind a stuck one may find its deadline gone: 504.
    expected = {(200, "ok"), (503, "DatabaseUnavailable"), (503, "ServiceUnavailable"), (504, "DeadlineExceeded")}
    assert answered <= expected, answered


def test_calls_succeed_again_after_postgresql_thaws(frozen_postgres_run: FrozenRun) -> None:
    after = [o for o in frozen_postgres_run.outcomes if o.started > frozen_postgres_run.thawed_at + DEADLINE]
    assert after, "no call was made after the thaw"
    assert {o.name for o in after} == {"ok"}


def test_readiness_answers_503_within_seconds_while_calls_to_a_frozen_postgresql_run(
    frozen_postgres_run: FrozenRun,
) -> None:
    assert frozen_postgres_run.probe is not None
    seconds, status, body = frozen_postgres_run.probe
    assert status == 503, body
    assert "sqlalchemy" in body["checks"], body
    assert seconds < PROBE_BOUND


def test_every_write_acknowledged_while_postgresql_froze_is_stored(frozen_postgres_run: FrozenRun) -> None:
    acknowledged = frozen_postgres_run.written("ok")
    assert acknowledged
    missing = acknowledged - frozen_postgres_run.stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes are missing"


def test_no_write_answered_with_an_error_is_stored(frozen_postgres_run: FrozenRun) -> None:
    # Some writes reached the frozen database (the others were refused before a worker took them).
    assert frozen_postgres_run.written("DatabaseUnavailable")
    refused = frozen_postgres_run.refused_writes()
    stored = refused & frozen_postgres_run.stored
    assert not stored, f"{len(stored)} of {len(refused)} writes answered with an error were committed"


def test_no_session_is_left_idle_in_transaction_after_postgresql_thaws(frozen_postgres_run: FrozenRun) -> None:
    assert frozen_postgres_run.sessions_after  # the query does see our sessions
    assert "idle in transaction" not in frozen_postgres_run.sessions_after, frozen_postgres_run.sessions_after


def test_the_server_logs_no_traceback_while_postgresql_freezes(frozen_postgres_run: FrozenRun) -> None:
    assert "Traceback" not in frozen_postgres_run.output


def test_readiness_answers_503_while_both_workers_are_stuck_in_frozen_calls(postgres):
    # Each worker in a call with a long deadline: only the arbiter can answer the probe before they end.
    long_deadline = 6.0
    env = {"DATABASE_URL": postgres.url, "APPLICATION_NAME": f"{APPLICATION}-probe"}
    with LiveServer("frozen_pg_app:service", workers=2, cwd=APPS, env=env, busy_timeout=BUSY_TIMEOUT) as server:
        client = pyservice.Client(operations=["read"], endpoint={"port": server.port}, retries=0)
        client.read()
        results: list[tuple[float, int | None, str]] = []
        postgres.freeze()
        try:
            threads = [
                threading.Thread(target=lambda: results.append(timed_call(client, "read", {}, deadline=long_deadline)))
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
                time.sleep(0.3)  # the first worker is in its call before the second connection comes
            time.sleep(1.0)  # both workers have been in their calls longer than BUSY_TIMEOUT
            started = time.monotonic()
            answer = requests.get(f"{server.url}/health/ready", timeout=3 * long_deadline)
            seconds = time.monotonic() - started
            for thread in threads:
                thread.join(timeout=2 * long_deadline)
        finally:
            postgres.thaw()
    print(
        f"\nreadiness while both workers are in frozen calls: {answer.status_code} in {seconds:.2f} s; calls {results}"
    )
    assert answer.status_code == 503
    assert "sqlalchemy" in answer.json()["checks"]
    # The workers are held at least 3.7 s after the probe is sent (a new connection to the frozen
    # server gives up after the driver's connect_timeout, 5 s, a pooled one at the deadline): a probe
    # that waited for one would take that and its own check (about health.timeout, 2 s).
    assert seconds < 4.0
    # Both calls were still in the workers, answered by their deadline.
    assert [status for _, status, _ in results] == [503, 503]


def test_calls_on_kept_alive_connections_to_a_frozen_postgresql_are_answered_within_their_deadline(postgres):
    # Four callers on two workers, each with a connection kept alive from a call before the freeze:
    # at least two connections share a worker, so at least two calls wait unread behind another.
    # Their deadlines count from when they arrived (the kernel's receive stamps), not from the read.
    env = {"DATABASE_URL": postgres.url, "APPLICATION_NAME": f"{APPLICATION}-kept"}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            LiveServer("frozen_pg_app:service", workers=2, cwd=APPS, env=env, busy_timeout=BUSY_TIMEOUT)
        )
        clients = [
            stack.enter_context(pyservice.Client(operations=["read"], endpoint={"port": server.port}, retries=0))
            for _ in range(4)
        ]
        for client in clients:
            client.read()
        results: list[tuple[float, int | None, str]] = []
        postgres.freeze()
        try:
            threads = [
                threading.Thread(target=lambda c=client: results.append(timed_call(c, "read", {}, keep_alive=True)))
                for client in clients
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=3 * (DEADLINE + 3 * MARGIN))
        finally:
            postgres.thaw()
        print(f"\nkept-alive calls to a frozen PostgreSQL, {DEADLINE:g} s deadlines: {sorted(results)}")
        assert len(results) == len(clients)
        assert {(status, name) for _, status, name in results} <= {
            (503, "DatabaseUnavailable"),
            (504, "DeadlineExceeded"),
        }, results
        # Counted from the read, the calls behind would take two deadlines.
        assert max(seconds for seconds, _, _ in results) < DEADLINE + MARGIN / 2, results


# Redis ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis():
    server = private(PrivateRedis)
    server.start()
    yield server
    server.close()  # thawed first


@pytest.fixture(scope="module")
def redis_service(redis):
    with LiveServer(
        "frozen_redis_app:service", workers=2, cwd=APPS, env={"REDIS_URL": redis.url}, busy_timeout=BUSY_TIMEOUT
    ) as server:
        yield server


@pytest.fixture
def frozen_redis(redis):
    redis.freeze()
    # Past both plugins' retry_interval (0.2 s) since any earlier failure: the next call asks the frozen Redis.
    time.sleep(0.5)
    yield redis
    redis.thaw()


def post(server: LiveServer, operation: str) -> tuple[float, requests.Response]:
    """One call with the test's deadline, on a new connection: ``(seconds, answer)``."""
    started = time.monotonic()
    answer = requests.post(
        f"{server.url}/api/v1/{operation}",
        data=b"{}",
        headers={"Content-Type": "application/json", "Pyservice-Timeout": f"{DEADLINE:g}", "Connection": "close"},
        timeout=DEADLINE + 3 * MARGIN,
    )
    return time.monotonic() - started, answer


def cache_hits(server: LiveServer) -> bool:
    first, second = post(server, "cached")[1], post(server, "cached")[1]
    return first.status_code == second.status_code == 200 and first.json() == second.json()


def counted(server: LiveServer, operation: str) -> bool:
    answer = post(server, operation)[1]
    return answer.status_code == 200 and "RateLimit-Remaining" in answer.headers


def test_a_frozen_redis_is_a_cache_miss_served_by_the_handler_within_the_deadline(redis_service, redis):
    assert eventually(lambda: cache_hits(redis_service))
    stored = post(redis_service, "cached")[1].json()["computed"]
    redis.freeze()
    try:
        answers = [post(redis_service, "cached") for _ in range(6)]
    finally:
        redis.thaw()
    print(f"\ncache, frozen Redis: {[f'{seconds:.2f}' for seconds, _ in answers]} s")
    assert [answer.status_code for _, answer in answers] == [200] * 6
    computed = [answer.json()["computed"] for _, answer in answers]
    assert stored not in computed  # not the stored entry: the handler ran
    assert len(set(computed)) == len(computed)  # and nothing was stored meanwhile
    assert max(seconds for seconds, _ in answers) < DEADLINE + MARGIN


def test_the_cache_hits_again_after_redis_thaws(redis_service, frozen_redis):
    for _ in range(3):
        post(redis_service, "cached")
    frozen_redis.thaw()
    assert eventually(lambda: cache_hits(redis_service))


def test_a_frozen_redis_gets_throttle_unavailable_within_the_deadline_when_closed(redis_service, frozen_redis):
    answers = [post(redis_service, "limited_closed") for _ in range(4)]
    print(f"\nthrottle closed, frozen Redis: {[f'{seconds:.2f}' for seconds, _ in answers]} s")
    assert [answer.status_code for _, answer in answers] == [503] * 4
    assert {answer.json()["error"]["name"] for _, answer in answers} == {"ThrottleUnavailable"}
    assert all(int(answer.headers["Retry-After"]) >= 1 for _, answer in answers)
    assert max(seconds for seconds, _ in answers) < DEADLINE + MARGIN


def test_a_frozen_redis_lets_calls_through_uncounted_within_the_deadline_when_open(redis_service, frozen_redis):
    answers = [post(redis_service, "limited_open") for _ in range(4)]
    print(f"\nthrottle open, frozen Redis: {[f'{seconds:.2f}' for seconds, _ in answers]} s")
    assert [answer.status_code for _, answer in answers] == [200] * 4
    assert not any("RateLimit-Remaining" in answer.headers for _, answer in answers)
    assert max(seconds for seconds, _ in answers) < DEADLINE + MARGIN


def test_the_throttle_counts_again_after_redis_thaws(redis_service, frozen_redis):
    assert post(redis_service, "limited_closed")[1].status_code == 503
    frozen_redis.thaw()
    assert eventually(lambda: counted(redis_service, "limited_closed"))
    assert eventually(lambda: counted(redis_service, "limited_open"))


def test_the_server_logs_no_traceback_while_redis_freezes(redis_service, frozen_redis):
    post(redis_service, "cached")
    post(redis_service, "limited_closed")
    assert "Traceback" not in redis_service.output()
