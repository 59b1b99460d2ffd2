"""Interleaved rounds: every case is measured once per round, so a slow spell of a
noisy machine hits all of them alike, and the medians stay comparable."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .apps import expected_result
from .progress import Progress
from .wsgi import EnvironFactory, WSGIApp, check_answer, run_batch

#: ``batch(n)`` makes ``n`` calls and returns the seconds the calls took,
#: leaving out whatever it prepared beforehand (environs, signed headers).
Batch = Callable[[int], float]


@dataclass
class Case:
    """One thing measured: a label, its group in the tables, and a batch runner."""

    label: str
    batch: Batch
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    check: Callable[[], None] | None = None  # run once before timing; raises if the case is wrong


def wsgi_case(
    label: str,
    app: WSGIApp,
    environs: EnvironFactory,
    group: str = "",
    **meta: Any,
) -> Case:
    """A case calling ``app`` in-process, one fresh environ per call.

    Before it is timed, the case checks that ``app`` answers exactly
    :func:`~suite.apps.expected_result` of the request it was sent.
    """

    def batch(n: int) -> float:
        prepared = environs(n)
        gc.collect()
        started = time.perf_counter()
        run_batch(app, prepared)
        return time.perf_counter() - started

    def check() -> None:
        environ = environs(1)[0]
        expected = expected_result(orjson.loads(environ["wsgi.input"].getvalue()))
        check_answer(label, app, environ, expected)

    return Case(label, batch, group, meta, check)


@dataclass
class Result:
    """Seconds per call of one case, one figure per round."""

    label: str
    group: str
    calls_per_round: int
    per_call: list[float]
    meta: dict[str, Any]

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)

    def summary(self, reference: Result | None = None) -> dict[str, Any]:
        """The figures the tables show; ``ratio`` is calls/s relative to ``reference``."""
        median = self.median
        row = {
            "label": self.label,
            "group": self.group,
            "rounds": len(self.per_call),
            "calls_per_round": self.calls_per_round,
            "us_per_call": median * 1e6,
            "us_min": min(self.per_call) * 1e6,
            "us_max": max(self.per_call) * 1e6,
            "calls_per_s": 1 / median,
            **self.meta,
        }
        if reference is not None:
            row["ratio"] = reference.median / median
        return row


def calibrate(case: Case, target: float, max_calls: int) -> int:
    """The number of calls that takes about ``target`` seconds."""
    n = 1
    while True:
        elapsed = case.batch(n)
        if elapsed >= target / 10 or n >= max_calls:
            break
        n = min(max_calls, n * 10 if elapsed < target / 100 else n * 2)
    per_call = max(elapsed / n, 1e-9)
    return max(1, min(max_calls, round(target / per_call)))


def run_rounds(
    section: str,
    cases: list[Case],
    *,
    rounds: int,
    target: float,
    progress: Progress,
    max_calls: int = 200_000,
) -> list[Result]:
    """Measure ``cases`` in ``rounds`` interleaved rounds of about ``target`` seconds each.

    The order rotates from round to round, so no case always follows the
    same neighbour (a case that leaves garbage behind would otherwise
    always tax the same next one).
    """
    sizes = {}
    for case in cases:
        if case.check is not None:
            case.check()
        sizes[case.label] = calibrate(case, target, max_calls)
    times: dict[str, list[float]] = {case.label: [] for case in cases}
    for number in range(rounds):
        shift = number % len(cases)
        for case in cases[shift:] + cases[:shift]:
            n = sizes[case.label]
            times[case.label].append(case.batch(n) / n)
        progress.step(section, f"round {number + 1}/{rounds}")
    return [Result(case.label, case.group, sizes[case.label], times[case.label], case.meta) for case in cases]
