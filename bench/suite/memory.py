"""Section 5 (in-process half): memory one call uses, and what calls leave behind.

tracemalloc counts the Python allocations made while it traces. For each app:

- peak per call: the most memory held at once during one call, above what
  was held before it (the request's and answer's objects, decoded JSON,
  the context...); the median over calls.
- retained per call: what is still allocated after many calls and a full
  garbage collection, divided by the calls. Zero means nothing accumulates;
  a cache that fills up shows here until it is full.

The environs are built before tracing starts and dropped after each call,
so they do not count. The worker RSS after a long run over HTTP is read
by the http section (suite/served.py).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import tracemalloc
from typing import Any

from . import plugins as real_plugins
from .apps import WSGIApp, bare_app, build_falcon, build_flask, build_service
from .modes import Mode
from .payloads import SMALL_BODY
from .progress import Progress
from .wsgi import EnvironFactory, run_batch, same_body

SECTION = "memory"


def measure(app: WSGIApp, environs: EnvironFactory, calls: int) -> dict[str, float]:
    run_batch(app, environs(200))  # warm: first-call caches are not per-call costs
    peaks_env = environs(min(calls, 2000))
    bulk_env = environs(calls)
    gc.collect()
    tracemalloc.start()
    try:
        peaks = []
        while peaks_env:
            environ = peaks_env.pop()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            run_batch(app, [environ])
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
            del environ
        gc.collect()
        start = tracemalloc.take_snapshot()
        while bulk_env:
            environ = bulk_env.pop()
            run_batch(app, [environ])
            del environ
        gc.collect()
        end = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    diff = end.compare_to(start, "filename")
    retained = sum(stat.size_diff for stat in diff)
    blocks = sum(stat.count_diff for stat in diff)
    return {
        "peak_bytes_per_call": statistics.median(peaks),
        "retained_bytes_per_call": retained / calls,
        "retained_blocks_per_call": blocks / calls,
    }


def run(mode: Mode, progress: Progress) -> dict[str, Any]:
    environs = same_body(SMALL_BODY)
    apps: list[tuple[str, WSGIApp, EnvironFactory]] = [
        ("bare WSGI function", bare_app, environs),
        ("pyservice, no plugins", build_service(), environs),
        ("pyservice, 5 hooks in each scope", build_service(request_hooks=5, operation_hooks=5), environs),
        ("Falcon", build_falcon(), environs),
        ("Flask", build_flask(), environs),
    ]
    rows = []
    with contextlib.ExitStack() as stack:
        present = []
        for maker in real_plugins.ALL:
            try:
                maker(contextlib.ExitStack())
            except real_plugins.Unavailable:
                continue
            present.append(maker)
        if present:
            try:
                service, factory = real_plugins.build(present, stack)
            except real_plugins.Unavailable as exc:
                progress.note(SECTION, f"skipped the plugins' row: {exc}")
            else:
                apps.append(("pyservice + installed plugins, cache miss", service, factory))
        for label, app, factory in apps:
            row = {"label": label, "calls": mode.memory_calls, **measure(app, factory, mode.memory_calls)}
            rows.append(row)
            peak, kept = row["peak_bytes_per_call"], row["retained_bytes_per_call"]
            progress.step(SECTION, f"{label}: {peak:.0f} B peak/call, {kept:.1f} B kept/call")
    return {"rows": rows}
