from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyservice_throttle import Rate, decide, gcra, parse_rate


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("100/second", 100, 1.0),
        ("1000/minute", 1000, 60.0),
        ("5/hour", 5, 3600.0),
        ("1/day", 1, 86400.0),
        ("10/2s", 10, 2.0),
        ("10 / 2 seconds", 10, 2.0),
        ("5/500ms", 5, 0.5),
        ("3/1.5m", 3, 90.0),
    ],
)
def test_limits_parse_to_count_and_period(text: str, count: int, period: float) -> None:
    assert parse_rate(text) == Rate(count, period)


@pytest.mark.parametrize("text", ["", "100", "/second", "10/fortnight", "-1/second", "1.5/second", "10/0s"])
def test_malformed_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_rate(text)


def test_the_interval_is_rounded_up_to_whole_microseconds() -> None:
    assert Rate(3, 1.0).interval == 333_334
    assert Rate(10, 2.0).interval == 200_000


steps = st.lists(st.integers(min_value=0, max_value=3_000_000), min_size=1, max_size=60)


@given(
    gaps=steps,
    count=st.integers(min_value=1, max_value=20),
    burst=st.integers(min_value=1, max_value=20),
)
def test_no_interval_ever_lets_more_than_burst_plus_elapsed_over_the_interval(
    gaps: list[int], count: int, burst: int
) -> None:
    interval = Rate(count, 1.0).interval
    capacity = burst * interval
    tat = None
    now = 0
    allowed_at = []
    for gap in gaps:
        now += gap
        allowed, tat = gcra(tat, now, interval, capacity)
        if allowed:
            allowed_at.append(now)
    for first in range(len(allowed_at)):
        for last in range(first, len(allowed_at)):
            elapsed = allowed_at[last] - allowed_at[first]
            assert last - first + 1 <= burst + elapsed // interval


@given(
    calls_before=st.integers(min_value=0, max_value=30),
    wait=st.integers(min_value=0, max_value=5_000_000),
    burst=st.integers(min_value=1, max_value=10),
)
def test_remaining_is_exactly_the_calls_that_pass_back_to_back(calls_before: int, wait: int, burst: int) -> None:
    interval, capacity = 250_000, burst * 250_000
    tat = None
    for _ in range(calls_before):
        _, tat = gcra(tat, 0, interval, capacity)
    now = wait
    allowed, tat = gcra(tat, now, interval, capacity)
    decision = decide(allowed, tat, now, interval, capacity)
    passed = 0
    while True:
        more, tat = gcra(tat, now, interval, capacity)
        if not more:
            break
        passed += 1
    assert passed == (decision.remaining if allowed else 0)


@given(calls=st.integers(min_value=1, max_value=30), burst=st.integers(min_value=1, max_value=10))
def test_retry_after_seconds_are_enough_and_never_zero(calls: int, burst: int) -> None:
    interval, capacity = 700_000, burst * 700_000
    tat = None
    allowed = True
    for _ in range(calls + burst):
        allowed, tat = gcra(tat, 0, interval, capacity)
    assert not allowed
    decision = decide(allowed, tat, 0, interval, capacity)
    assert decision.retry_after >= 1
    assert gcra(tat, decision.retry_after * 1_000_000, interval, capacity)[0]
    assert not gcra(tat, (decision.retry_after - 1) * 1_000_000, interval, capacity)[0]
