from __future__ import annotations

from typing import Any

import pytest
from pyservice import Client, Service
from pyservice.testing import client_for
from pyservice_throttle import Pacer, Rate, RequestThrottled, Throttle
from throttle_helpers import FakeClock, make_api


class Counted:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []


def build(service_config: dict[str, Any]) -> tuple[Service, Counted]:
    service = Service(available_plugins=[Throttle], **make_api(service_config))
    seen = Counted()

    @service.operation("get_thing")
    @service.operation("put_thing")
    def handler(request: Any, response: Any, context: Any) -> None:
        seen.calls.append({"trace": context.headers.get("X-Trace"), "key": context.headers.get("Idempotency-Key")})
        response.number = len(seen.calls)

    return service, seen


def connect(service: Service, client_config: dict[str, Any]) -> Client:
    return client_for(service, api=make_api(client_config), available_plugins=[Throttle])


def test_a_throttled_call_waits_retry_after_and_succeeds(clock: FakeClock) -> None:
    service, seen = build({"limit": "1/10s", "clock": clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep})
    client.get_thing()
    assert client.get_thing().number == 2
    assert len(clock.sleeps) == 1
    assert 10 <= clock.sleeps[0] <= 11  # Retry-After plus at most 10 % jitter
    assert len(seen.calls) == 2


def test_retrying_stops_after_the_configured_number_of_retries(clock: FakeClock) -> None:
    service, seen = build({"limit": "1/minute", "clock": clock})
    waits: list[float] = []
    client = connect(
        service, {"clock": clock, "sleep": waits.append, "retries": 2, "max_wait": 600}
    )  # time never moves
    client.get_thing()
    with pytest.raises(RequestThrottled, match="retry after 60 s"):
        client.get_thing()
    assert len(waits) == 2
    assert len(seen.calls) == 1


def test_a_retry_after_beyond_max_wait_is_not_waited_for(clock: FakeClock) -> None:
    service, _ = build({"limit": "1/minute", "clock": clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep, "max_wait": 30})
    client.get_thing()
    with pytest.raises(RequestThrottled):
        client.get_thing()
    assert clock.sleeps == []


def test_the_total_wait_of_one_call_stays_within_max_wait(clock: FakeClock) -> None:
    service_clock = FakeClock()  # frozen: every retry is refused again
    service, _ = build({"limit": "1/10s", "clock": service_clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep, "max_wait": 25, "jitter": 0, "retries": 10})
    client.get_thing()
    with pytest.raises(RequestThrottled):
        client.get_thing()
    assert clock.sleeps == [10, 10]


def test_jitter_adds_at_most_its_fraction_of_retry_after(clock: FakeClock) -> None:
    service_clock = FakeClock()
    service, _ = build({"limit": "1/10s", "clock": service_clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep, "max_wait": 10_000, "jitter": 0.5, "retries": 50})
    client.get_thing()
    with pytest.raises(RequestThrottled):
        client.get_thing()
    assert len(clock.sleeps) == 50
    assert all(10 <= wait <= 15 for wait in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


def test_a_non_idempotent_call_is_retried_after_429_with_its_headers(clock: FakeClock) -> None:
    service, seen = build({"limit": "1/second", "clock": clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep})
    client.call("put_thing", {}, headers={"X-Trace": "t-1"}, idempotency_key="k-1")
    answer = client.call("put_thing", {}, headers={"X-Trace": "t-2"}, idempotency_key="k-2")
    assert answer.number == 2
    assert seen.calls[-1] == {"trace": "t-2", "key": "k-2"}
    assert len(clock.sleeps) == 1


def test_retries_zero_registers_no_client_hook(clock: FakeClock) -> None:
    service, _ = build({"limit": "1/second", "clock": clock})
    client = connect(service, {"retries": 0})
    assert "throttle" not in client.describe_chain()


def test_pacing_keeps_calls_under_the_service_limit(clock: FakeClock) -> None:
    service, seen = build({"limit": "5/second", "burst": 1, "clock": clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep, "pace": "5/second", "retries": 0})
    for _ in range(20):
        client.get_thing()
    assert len(seen.calls) == 20
    assert clock.sleeps == [0.2] * 19


def test_pacing_refuses_locally_a_call_that_would_wait_beyond_max_wait(clock: FakeClock) -> None:
    service, seen = build({"limit": "100/second", "clock": clock})
    client = connect(service, {"clock": clock, "sleep": clock.sleep, "pace": "1/minute", "max_wait": 10})
    client.get_thing()
    with pytest.raises(RequestThrottled, match="client-side pacing at 1/60s"):
        client.get_thing()
    assert len(seen.calls) == 1
    clock.advance(60)
    client.get_thing()  # the refused call took no slot
    assert len(seen.calls) == 2


def test_pacer_lets_its_burst_go_back_to_back_then_spaces_calls(clock: FakeClock) -> None:
    pacer = Pacer(Rate(2, 1.0), burst=3, clock=clock, sleep=clock.sleep)
    assert [pacer.wait() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 0.5]
