"""Retries that cannot hurt, over real HTTP: the policy, the deadline, the budget, the breaker, hedging."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyservice
import pytest
from pyservice._retry import BreakerOptions, BudgetOptions, CircuitBreaker, RetryBudget
from pyservice.testing import LiveServer, free_port

APPS = Path(__file__).parent / "apps"
OPERATIONS: dict[str, Any] = {
    "echo": {"idempotent": True},
    "slow": {"idempotent": True},
    "unavailable": {"idempotent": True, "retry": {"backoff": 0.001, "max_backoff": 0.002}},
    "race": {"idempotent": True},
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer("client_app:service", workers=2, cwd=APPS, busy_timeout=30) as running:
        yield running


@pytest.fixture(scope="module")
def spare() -> Iterator[LiveServer]:
    """Sync workers that take a connection only when idle, so a hedge never queues behind its slow first attempt."""
    with LiveServer("client_app:service", workers=4, server="gunicorn", cwd=APPS) as running:
        yield running


def make_client(port: int, operations: dict[str, Any] | None = None, **api: Any) -> pyservice.Client:
    return pyservice.Client(
        name="clientapp",
        operations=operations or OPERATIONS,
        exceptions={"Unavailable": {"status": 503}},
        endpoint={"port": port},
        **api,
    )


class Recorder:
    """Attempt hooks' and request hooks' view of each call."""

    def __init__(self, client: pyservice.Client) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.lock = threading.Lock()

        @client.plugin(scope="request")
        def annotations(context):
            try:
                context.process_request()
            finally:
                self.annotations.append(dict(context.annotations))

        @client.plugin(scope="attempt")
        def attempts(context):
            entry = {
                "attempt": context.attempt,
                "started": time.monotonic(),
                "deadline": context.deadline,
                "timeout": context.timeout,
                "header": context.headers.get("Pyservice-Timeout"),
            }
            try:
                context.process_request()
                entry["status"] = context.status
            except BaseException as exc:
                entry["error"] = exc
                raise
            finally:
                with self.lock:
                    self.attempts.append(entry)

    def wait_for(self, count: int, seconds: float = 4.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.attempts) < count and time.monotonic() < deadline:
            time.sleep(0.01)


# ------------------------------------------------------------------ policy


def test_an_operations_retry_policy_sets_its_attempts(server):
    operations = {
        **OPERATIONS,
        "unavailable": {**OPERATIONS["unavailable"], "retry": {"attempts": 4, "backoff": 0.001}},
    }
    client = make_client(server.port, operations)
    seen = Recorder(client)
    with pytest.raises(client.exceptions.Unavailable):
        client.unavailable(fail=True)
    assert [entry["status"] for entry in seen.attempts] == [503, 503, 503, 503]


def test_a_status_not_in_on_is_not_retried(server):
    operations = {**OPERATIONS, "unavailable": {"idempotent": True, "retry": {"attempts": 4, "on": [502, "transport"]}}}
    client = make_client(server.port, operations)
    seen = Recorder(client)
    with pytest.raises(client.exceptions.Unavailable):
        client.unavailable(fail=True)
    assert len(seen.attempts) == 1


def test_retries_never_start_past_the_calls_deadline(server):
    operations = {
        **OPERATIONS,
        "unavailable": {"idempotent": True, "retry": {"attempts": 10_000, "backoff": 0.02, "max_backoff": 0.02}},
    }
    client = make_client(server.port, operations)
    seen = Recorder(client)
    # The last attempt may have had too little time left to be answered.
    with pytest.raises((client.exceptions.Unavailable, pyservice.CallTimeout)):
        client.call("unavailable", {"fail": True}, timeout=0.5)
    assert 1 < len(seen.attempts) < 10_000
    deadline = seen.attempts[0]["deadline"]
    assert all(entry["started"] < deadline for entry in seen.attempts)
    # What is left is what each attempt tells the service.
    sent = [float(entry["header"]) for entry in seen.attempts]
    assert sent == sorted(sent, reverse=True)
    assert sent[0] <= 0.5
    assert seen.annotations[0]["retry_deadline"] is True


def test_an_attempt_timeout_leaves_time_for_a_retry(server, tmp_path):
    operations = {"race": {"idempotent": True, "retry": {"attempt_timeout": 0.3, "on": ["timeout"]}}}
    client = make_client(server.port, operations, timeout=5)
    seen = Recorder(client)
    answer = client.race(token=uuid.uuid4().hex, directory=str(tmp_path), seconds=1)
    assert answer.first is False
    assert isinstance(seen.attempts[0]["error"], pyservice.CallTimeout)
    assert seen.attempts[0]["timeout"].read == 0.3
    assert seen.attempts[1]["status"] == 200


def test_a_call_with_an_idempotency_key_from_a_request_hook_is_retried(server):
    operations = {"unavailable": {"retry": {"backoff": 0.001}}}  # not idempotent on this client
    client = make_client(server.port, operations)
    seen = Recorder(client)
    with pytest.raises(client.exceptions.Unavailable):
        client.unavailable(fail=True)
    assert len(seen.attempts) == 1

    @client.plugin(scope="request")
    def add_key(context):
        context.headers["Idempotency-Key"] = "k-1"
        context.process_request()

    seen.attempts.clear()
    with pytest.raises(client.exceptions.Unavailable):
        client.unavailable(fail=True)
    assert len(seen.attempts) == 3


def test_request_and_operation_hooks_run_once_per_call_and_attempt_hooks_per_attempt(server):
    client = make_client(server.port)
    counts = {"request": 0, "operation": 0, "attempt": 0}
    keys = []

    @client.plugin(scope="request")
    def request_hook(context):
        counts["request"] += 1
        context.headers["X-Call"] = "one"
        context.process_request()

    @client.plugin(scope="operation")
    def operation_hook(request, response, context):
        counts["operation"] += 1
        context.process_request()

    @client.plugin(scope="attempt")
    def attempt_hook(context):
        counts["attempt"] += 1
        keys.append(context.headers.get("X-Call"))
        context.process_request()

    with pytest.raises(client.exceptions.Unavailable):
        client.unavailable(fail=True)
    assert counts == {"request": 1, "operation": 1, "attempt": 3}
    assert keys == ["one", "one", "one"]


# ------------------------------------------------------------------ budget


def test_the_budget_caps_retries_at_its_ratio_of_calls(server):
    operations = {"unavailable": {"idempotent": True, "retry": {"attempts": 5, "backoff": 0.001}}}
    client = make_client(server.port, operations, retry_budget={"ratio": 0.2, "per_second": 0})
    seen = Recorder(client)
    for _ in range(20):
        with pytest.raises(client.exceptions.Unavailable):
            client.unavailable(fail=True)
    retries = len(seen.attempts) - 20
    assert 0 < retries <= 4  # 20% of 20 calls, not 4 retries each
    assert client.retry_budget is not None
    assert client.retry_budget.refused > 0
    assert {"retry_budget": "exhausted"} in seen.annotations


def test_the_budget_allows_a_few_retries_a_second_whatever_the_calls(server):
    operations = {"unavailable": {"idempotent": True, "retry": {"attempts": 3, "backoff": 0.001}}}
    client = make_client(server.port, operations, retry_budget={"ratio": 0, "per_second": 1, "window": 10})
    seen = Recorder(client)
    for _ in range(20):
        with pytest.raises(client.exceptions.Unavailable):
            client.unavailable(fail=True)
    assert len(seen.attempts) - 20 == 10  # 1 a second over a 10-second window


def test_without_a_budget_every_call_takes_its_retries(server):
    operations = {"unavailable": {"idempotent": True, "retry": {"attempts": 3, "backoff": 0.001}}}
    client = make_client(server.port, operations, retry_budget=None)
    seen = Recorder(client)
    for _ in range(10):
        with pytest.raises(client.exceptions.Unavailable):
            client.unavailable(fail=True)
    assert len(seen.attempts) == 30
    assert client.retry_budget is None


def test_the_budget_window_slides():
    now = [100.0]
    budget = RetryBudget(BudgetOptions(ratio=0.5, per_second=0, window=3), clock=lambda: now[0])
    for _ in range(4):
        budget.deposit()
    assert [budget.withdraw() for _ in range(3)] == [True, True, False]
    now[0] += 3  # the calls and retries of the first second left the window
    assert budget.withdraw() is False
    budget.deposit()
    budget.deposit()
    assert budget.withdraw() is True


# ----------------------------------------------------------------- breaker


def test_the_breaker_opens_after_consecutive_failures_and_refuses_without_sending():
    client = make_client(free_port(), {"create": {}}, circuit_breaker={"failures": 3, "reset": 30})
    seen = Recorder(client)
    for _ in range(3):
        with pytest.raises(pyservice.TransportError):
            client.create()
    assert client.circuit_state == "open"
    with pytest.raises(pyservice.CircuitOpen) as raised:
        client.create()
    assert len(seen.attempts) == 3  # the fourth call was never sent
    assert 0 < raised.value.retry_in <= 30
    assert seen.annotations[2] == {"circuit": "opened"}
    assert seen.annotations[3] == {"circuit": "open"}


def test_a_half_open_probe_that_succeeds_closes_the_breaker(server):
    client = make_client(server.port, circuit_breaker={"failures": 2, "reset": 0.2})
    seen = Recorder(client)
    # Two failed attempts of one call open it; the third is not sent, and the call ends with the last answer.
    with pytest.raises(client.exceptions.Unavailable):
        client.call("unavailable", {"fail": True}, timeout=5)
    assert len(seen.attempts) == 2
    assert seen.annotations[-1] == {"circuit": "open"}
    assert client.circuit_state == "open"
    with pytest.raises(pyservice.CircuitOpen):
        client.echo()
    time.sleep(0.3)
    assert client.circuit_state == "half_open"
    assert client.echo(a=1).a == 1
    assert client.circuit_state == "closed"
    assert seen.annotations[-1] == {"circuit": "closed"}
    assert client.circuit_breaker is not None
    assert client.circuit_breaker.failures == 0


def test_a_half_open_probe_that_fails_opens_the_breaker_again(server):
    client = make_client(server.port, circuit_breaker={"failures": 1, "reset": 0.2})
    with pytest.raises(client.exceptions.Unavailable):
        client.call("unavailable", {"fail": True}, timeout=5)
    time.sleep(0.3)
    with pytest.raises(client.exceptions.Unavailable):
        client.call("unavailable", {"fail": True}, timeout=5)
    assert client.circuit_state == "open"
    assert client.circuit_breaker is not None
    assert client.circuit_breaker.opened == 2


def test_a_half_open_breaker_lets_only_its_probes_through():
    now = [0.0]
    breaker = CircuitBreaker(BreakerOptions(failures=1, reset=1, probes=1), "http://x", clock=lambda: now[0])
    breaker.failure(probe=False)
    now[0] = 1.5
    assert breaker.admit("op") is True
    with pytest.raises(pyservice.CircuitOpen, match="probe is in flight"):
        breaker.admit("op")
    assert breaker.success(probe=True) == "closed"
    assert breaker.admit("op") is False


def test_an_error_answer_from_the_service_counts_as_the_service_being_there(server):
    client = make_client(server.port, circuit_breaker={"failures": 1, "reset": 30})
    with pytest.raises(pyservice.ServiceError):
        client.call("echo", headers={"Pyservice-Timeout": "bad"})
    assert client.circuit_state == "closed"


# ----------------------------------------------------------------- hedging


def hedged(port: int, delay: float = 0.1, attempts: int = 2, **api: Any) -> pyservice.Client:
    operations = {
        "race": {"idempotent": True, "hedge": {"delay": delay, "attempts": attempts}},
        "slow": {"idempotent": True, "hedge": {"delay": delay, "attempts": attempts}},
        "echo": {"idempotent": True, "hedge": {"delay": 2.0}},
    }
    return make_client(port, operations, **api)


def test_a_hedged_call_takes_the_first_answer_and_closes_the_loser(spare, tmp_path):
    client = hedged(spare.port)
    seen = Recorder(client)
    answer = client.race(token=uuid.uuid4().hex, directory=str(tmp_path), seconds=5)
    assert answer.first is False  # the hedge, not the slow first attempt
    assert seen.annotations == [{"hedge": {"attempts": 2, "winner": 2}}]
    seen.wait_for(2)  # the loser ends as soon as it is cancelled, not after its 5 s
    loser = next(entry for entry in seen.attempts if entry["attempt"] == 1)
    assert isinstance(loser["error"], pyservice.TransportError)
    assert "cancelled" in str(loser["error"])


def test_a_quick_answer_sends_no_hedge(spare):
    client = hedged(spare.port)
    seen = Recorder(client)
    assert client.echo(a=1).a == 1
    assert len(seen.attempts) == 1
    assert seen.annotations == [{}]


def test_hedges_stop_at_the_calls_deadline_and_are_all_cancelled(spare):
    client = hedged(spare.port, delay=0.05, attempts=3)
    seen = Recorder(client)
    with pytest.raises(pyservice.CallTimeout, match="3 hedged attempts"):
        client.call("slow", {"seconds": 1}, timeout=0.4)
    seen.wait_for(3)
    assert sorted(entry["attempt"] for entry in seen.attempts) == [1, 2, 3]
    assert all(isinstance(entry.get("error"), pyservice.TransportError) for entry in seen.attempts)


def test_hedges_spend_the_retry_budget(spare, tmp_path):
    client = hedged(spare.port, retry_budget={"ratio": 0, "per_second": 0})
    seen = Recorder(client)
    answer = client.call("race", {"token": uuid.uuid4().hex, "directory": str(tmp_path), "seconds": 0.5})
    assert answer.first is True  # no hedge was allowed: the slow first attempt answered
    assert len(seen.attempts) == 1
    assert seen.annotations == [{"retry_budget": "exhausted"}]


def test_a_hedged_call_is_many_threads_safe(spare, tmp_path):
    client = hedged(spare.port, delay=0.001, attempts=3)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(30):
                assert client.echo(thread=thread, n=n).n == n
                client.race(token=uuid.uuid4().hex, directory=str(tmp_path), seconds=0.01)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(thread,)) for thread in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert errors == []


# ------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("api", "key"),
    [
        ({"operations": {"x": {"hedge": {"delay": 0.1}}}}, "operations.x.hedge"),
        ({"operations": ["x"], "retry": {"attempts": 0}}, "retry"),
        ({"operations": ["x"], "retry": {"on": ["everything"]}}, "retry"),
        ({"operations": {"x": {"retry": {"backof": 1}}}}, "operations.x.retry"),
        ({"operations": ["x"], "retry_budget": {"ratio": 1.5}}, "retry_budget"),
        ({"operations": ["x"], "circuit_breaker": {"failures": 0}}, "circuit_breaker"),
        ({"operations": {"x": {"idempotent": True, "hedge": {"attempts": 1}}}}, "operations.x.hedge"),
    ],
)
def test_a_wrong_retry_key_fails_at_start_up_naming_it(api, key):
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Client(**api)
    assert raised.value.key == key


def test_a_hooks_own_error_in_a_hedged_call_is_raised_without_more_hedges(spare):
    client = hedged(spare.port)
    attempts = []

    @client.plugin(scope="attempt")
    def broken(context):
        attempts.append(context.attempt)
        raise RuntimeError("a bug in a hook")

    with pytest.raises(RuntimeError, match="a bug in a hook"):
        client.slow(seconds=0)
    assert attempts == [1]


def test_a_hedged_call_on_a_requests_session_closes_the_loser_when_it_answers(spare, tmp_path):
    import requests

    client = pyservice.Client(
        session=requests.Session(),
        name="clientapp",
        operations={"race": {"idempotent": True, "hedge": {"delay": 0.1}}},
        endpoint={"port": spare.port},
    )
    seen = Recorder(client)
    answer = client.race(token=uuid.uuid4().hex, directory=str(tmp_path), seconds=1)
    assert answer.first is False
    seen.wait_for(2)
    loser = next(entry for entry in seen.attempts if entry["attempt"] == 1)
    assert loser["status"] == 200  # it could not be interrupted; it answered, and was closed unread
    client.close()


def test_when_every_hedged_attempt_fails_the_last_answer_is_the_calls(spare):
    hedged_unavailable = {"idempotent": True, "hedge": {"delay": 0.05, "attempts": 3}}
    client = make_client(spare.port, {"unavailable": hedged_unavailable, "echo": {}})
    seen = Recorder(client)
    with pytest.raises(client.exceptions.Unavailable):
        client.unavailable(fail=True)
    seen.wait_for(3)
    assert sorted(entry["status"] for entry in seen.attempts) == [503, 503, 503]
    # The answers that lost were read or closed: their connections went back to the pool or were closed.
    assert client.echo(a=1).a == 1
    client.close()
