"""Section 4: how the cost grows with hooks, payload size and operations declared."""

from __future__ import annotations

import statistics
import time
from typing import Any

import orjson
import pyservice

from .apps import bare_app, build_service
from .modes import Mode
from .payloads import SMALL_BODY, of_size
from .progress import Progress
from .timing import run_rounds, wsgi_case
from .wsgi import same_body

SECTION = "scaling"


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def hooks(mode: Mode, progress: Progress) -> dict[str, Any]:
    """Pass-through hooks per scope: the marginal cost of one more hook is the slope."""
    environs = same_body(SMALL_BODY)
    cases = []
    for scope in ("request", "operation"):
        for count in mode.hook_sweep:
            service = build_service(**{f"{scope}_hooks": count})
            cases.append(wsgi_case(f"{count} {scope} hooks", service, environs, scope, scope=scope, hooks=count))
    results = run_rounds(f"{SECTION}/hooks", cases, rounds=mode.rounds, target=mode.target, progress=progress)
    rows = [result.summary() for result in results]
    slopes = {}
    for scope in ("request", "operation"):
        # Fit from 1 to 20 hooks: the first operation hook also switches the
        # chain from its flattened form to the general one (a one-off cost),
        # and deeper chains meet CPython's frame-stack chunk boundary (a step,
        # shown by the sweep's larger counts, not a per-hook cost).
        points = [(r["hooks"], r["us_per_call"]) for r in rows if r["scope"] == scope and 1 <= r["hooks"] <= 20]
        slopes[scope] = slope(points) if len(points) > 1 else None
    return {"rows": rows, "us_per_hook": slopes}


def payload(mode: Mode, progress: Progress) -> dict[str, Any]:
    """Request (and echoed answer) sizes from 100 B to 1 MB, bare next to pyservice."""
    service = build_service()
    cases = []
    for size in mode.payload_sizes:
        body = orjson.dumps(of_size(size))
        for label, app in (("bare", bare_app), ("pyservice", service)):
            cases.append(wsgi_case(f"{label}, {size} B", app, same_body(body), label, size=len(body), impl=label))
    results = run_rounds(f"{SECTION}/payload", cases, rounds=mode.rounds, target=mode.target, progress=progress)
    by_key = {(r.meta["impl"], r.meta["size"]): r for r in results}
    rows = []
    for (_impl, size), result in by_key.items():
        row = result.summary(by_key[("bare", size)])
        row["mb_per_s"] = size * 2 / result.median / 1e6  # decoded and encoded again
        rows.append(row)
    return {"rows": rows}


def operations(mode: Mode, progress: Progress) -> dict[str, Any]:
    """Operations declared: per-call cost (a dict lookup) and the cost of building the service."""
    environs = same_body(SMALL_BODY)
    cases = []
    build: dict[int, dict[str, float]] = {}
    for count in mode.operation_counts:
        times = []
        client_times = []
        for _ in range(3 if mode.name != "smoke" else 1):
            started = time.perf_counter()
            service = build_service(extra_operations=count - 1)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            pyservice.Client(**service.api.raw).compile()
            client_times.append(time.perf_counter() - started)
        build[count] = {"service_build_ms": min(times) * 1e3, "client_build_ms": min(client_times) * 1e3}
        cases.append(wsgi_case(f"{count} operations", service, environs, "operations", operations=count))
        progress.step(SECTION, f"built a service of {count} operations in {min(times) * 1e3:.1f} ms")
    results = run_rounds(f"{SECTION}/ops", cases, rounds=mode.rounds, target=mode.target, progress=progress)
    first = results[0]
    rows = []
    for result in results:
        row = result.summary(first)
        row.update(build[result.meta["operations"]])
        rows.append(row)
    return {"rows": rows}


def run(mode: Mode, progress: Progress) -> dict[str, Any]:
    return {
        "hooks": hooks(mode, progress),
        "payload": payload(mode, progress),
        "operations": operations(mode, progress),
    }
