"""What a cache hit and a cache miss cost, against the core alone and the same work done directly.

    python pyservice-cache/bench/bench_cache.py [--rounds 15] [--redis URL] [--callgrind]

Every case calls ``Service.wsgi_application`` in-process with a fresh environ
per call (built before the clock starts), the way bench/suite does, on the
bench's ``echo`` service and request:

- core: the service without plugins;
- cache hit: the cache plugin, memory backend, ``scope: public``, the same
  request every call;
- cache miss: the same, a new request every call (each one stored);
- direct hit: ``bench/suite/direct/cache.py``, the same work done directly
  with orjson, hashlib and cachetools (no WSGI around it).

Rounds are interleaved, so a slow spell of the machine hits every case alike;
the figure is the median of the rounds. ``--callgrind`` also counts the
instructions per call of each case under valgrind (a process per case, once
making the calls and once not; the difference per call). ``--redis URL`` adds
the Redis backend's hit and miss.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
BENCH = HERE.parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from suite.apps import build_service  # noqa: E402 - the bench's own package, found above
from suite.direct.cache import build as build_direct  # noqa: E402
from suite.payloads import SMALL_BODY, numbered  # noqa: E402
from suite.wsgi import environ_for, run_batch  # noqa: E402

CASES = ("core", "hit", "miss", "direct")


#: ``--before DIR``: DIR holds an older copy of the package, renamed ``pyservice_cache_before``,
#: measured beside this one in the same process ("hit before", "miss before").
BEFORE: list[Any] = []
#: Services with a Redis backend, whose entries are deleted at the end.
SERVICES: list[Any] = []


def _service(case: str, redis_url: str | None = None) -> Any:
    if case == "core":
        return build_service()
    if case.endswith(" before"):
        return build_service(
            plugins={"cache": {"backend": "memory"}},
            echo_options={"plugins": {"cache": {"scope": "public", "ttl": 3600}}},
            available_plugins=BEFORE,
        )
    cache: dict[str, Any] = {"backend": "memory"}
    if redis_url is not None:
        cache = {"backend": "redis", "redis_url": redis_url, "prefix": f"bench-{uuid.uuid4().hex}"}
    return build_service(
        plugins={"cache": cache}, echo_options={"plugins": {"cache": {"scope": "public", "ttl": 3600}}}
    )


def runner(case: str, redis_url: str | None = None) -> Callable[[int, bool], None]:
    """``run(n, dry)``: prepare ``n`` calls of ``case`` and, unless ``dry``, make them."""
    if case == "direct":
        direct = build_direct()
        answer = b'{"id":7,"total":7.5,"label":"teapot x3"}'
        direct.store(SMALL_BODY, answer)

        def run_direct(n: int, dry: bool) -> None:
            bodies = [bytes(SMALL_BODY) for _ in range(n)]  # a fresh object per call, as a server reads it
            if not dry:
                hit = direct.hit
                for body in bodies:
                    hit(body)

        return run_direct
    service = _service(case.removeprefix("redis "), redis_url)
    serial = iter(range(1 << 62))
    unique = case.removesuffix(" before").endswith("miss")

    def run(n: int, dry: bool) -> None:
        environs = [environ_for(numbered(next(serial)) if unique else SMALL_BODY) for _ in range(n)]
        if not dry:
            run_batch(service.wsgi_application, environs)

    run(100, False)  # warm: the first call stores the hit's entry and specialises the bytecode
    if redis_url is not None:
        SERVICES.append(service)
    return run


def timed(run: Callable[[int, bool], None], n: int) -> float:
    """Seconds per call of ``n`` calls, the preparation left out."""
    # Preparing is part of run(); time it alone and take it off.
    gc.collect()
    started = time.perf_counter()
    run(n, True)
    dry = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    run(n, False)
    return (time.perf_counter() - started - dry) / n


def measure(cases: list[str], rounds: int, calls: int, redis_url: str | None) -> dict[str, float]:
    """Median µs per call of each case, over interleaved rounds."""
    runs = {case: runner(case, redis_url) for case in cases}
    seen: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(rounds):
        for case, run in runs.items():
            seen[case].append(timed(run, calls) * 1e6)
    return {case: statistics.median(values) for case, values in seen.items()}


def instructions(case: str, calls: int, before: str | None = None) -> float:
    """Instructions per call of ``case``, counted by callgrind."""
    valgrind = shutil.which("valgrind")
    assert valgrind is not None

    def count(dry: bool) -> int:
        done = subprocess.run(  # noqa: S603 - this script under valgrind, with arguments built here
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(HERE),
             "--count", case, str(calls), *(["--dry"] if dry else []), *(["--before", before] if before else [])],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False,
        )  # fmt: skip
        for line in done.stderr.splitlines():
            if "refs:" in line:
                return int(line.split("refs:")[1].strip().replace(",", ""))
        raise RuntimeError(f"callgrind failed on {case}: {done.stderr[-1500:]}")

    return (count(False) - count(True)) / calls


def main() -> None:
    """Measure, print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--redis", default=None, help="also the Redis backend, at this URL")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--before", default=None, help="a folder holding pyservice_cache_before, to compare")
    parser.add_argument("--count", nargs=2, metavar=("CASE", "CALLS"), help=argparse.SUPPRESS)
    parser.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.before:
        sys.path.insert(0, args.before)
        from pyservice_cache_before import Cache as Before

        BEFORE.append(Before)
    if args.count:  # one case, under callgrind
        run = runner(args.count[0])
        run(int(args.count[1]), args.dry)
        return
    cases = list(CASES) + (["hit before", "miss before"] if args.before else [])
    micros = measure(cases, args.rounds, args.calls, None)
    if args.redis:
        from pyservice_cache import cache_of

        try:
            micros.update(measure(["redis hit", "redis miss"], max(3, args.rounds // 3), 500, args.redis))
        finally:
            for service in SERVICES:
                cache_of(service).invalidate_all()
                cache_of(service).close()
    counts = {case: instructions(case, 2000, args.before) for case in cases} if args.callgrind else {}
    core = micros["core"]
    print(f"{'case':<12} {'µs/call':>8} {'over core':>10} {'instr/call':>11} {'over core':>10}")
    for case, value in micros.items():
        over = "" if case in ("core", "direct") else f"{value - core:+.2f}"
        count = f"{counts[case]:,.0f}" if case in counts else ""
        count_over = (
            "" if case in ("core", "direct") or case not in counts else f"{counts[case] - counts['core']:+,.0f}"
        )
        print(f"{case:<12} {value:8.2f} {over:>10} {count:>11} {count_over:>10}")


if __name__ == "__main__":
    main()
