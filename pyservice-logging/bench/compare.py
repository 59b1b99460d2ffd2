"""The plugin against the core alone and against the same work done directly with structlog.

    python bench/compare.py                 # µs per call, interleaved rounds
    python bench/compare.py --instructions [CASE...]  # instructions per call, under callgrind
    python bench/compare.py CASE CALLS [--dry]   # one case, as callgrind runs it

Cases (service side, in-process, ``service.wsgi_application`` with prebuilt
environs from the main bench's ``suite.wsgi``; lines to ``os.devnull``):

- ``core``: the bench's echo service, no plugin;
- ``logging``: the same with ``logging`` on (json, ``output: stderr``, stderr
  pointed at ``os.devnull``);
- ``sampled_out``: ``sample_rate: 0`` (successes never logged);
- ``disabled``: ``level: error`` (call events of successes disabled);
- ``stdlib``: ``output: stdlib``, as the main bench configures it: lines handed
  to a stdlib handler writing to ``os.devnull`` (a ``LogRecord`` per line);
- ``direct``: no service, only ``bench/suite/direct/logging.py``'s emit of the
  same call fields: the floor the plugin is held to (2x it, plus 1 µs).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parents[1] / "bench"
sys.path.insert(0, str(BENCH))

CASES = ("core", "logging", "sampled_out", "disabled", "stdlib", "direct")
_REFS = re.compile(r"refs:\s+([\d,]+)")


def _plugins(case: str) -> dict[str, Any]:
    config: dict[str, Any] = {"renderer": "json", "output": "stderr"}
    if case == "sampled_out":
        config["sample_rate"] = 0.0
    elif case == "disabled":
        config["level"] = "error"
    elif case == "stdlib":
        config.update(output="stdlib", logger_name="bench.access")
    return {"logging": config}


def prepare(case: str, calls: int) -> Callable[[], None]:
    """A function making ``calls`` calls of ``case``, everything built beforehand."""
    from suite.apps import build_service
    from suite.payloads import SMALL_BODY
    from suite.wsgi import run_batch, same_body

    if case == "direct":
        from suite.direct.logging import build, example_fields

        emit = build(sys.stderr.buffer)
        fields = example_fields()

        def run_direct() -> None:
            for _ in range(calls):
                emit(dict(fields))

        return run_direct
    service = build_service(plugins={} if case == "core" else _plugins(case))
    environs = same_body(SMALL_BODY)(calls)
    app = service.wsgi_application
    return lambda: run_batch(app, environs)


def _devnull_stderr() -> None:
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    # The "stdlib" case's lines: a handler to os.devnull on a parent logger that stops there.
    parent = logging.getLogger("bench")
    if not parent.handlers:
        parent.addHandler(logging.StreamHandler(open(os.devnull, "w")))  # noqa: SIM115
        parent.propagate = False


def one_case(case: str, calls: int, dry: bool) -> None:
    """What runs under callgrind: warm up, then ``calls`` calls unless ``dry``."""
    _devnull_stderr()
    prepare(case, 200)()
    run = prepare(case, calls)
    if not dry:
        run()


def timings(rounds: int = 15, calls: int = 5000) -> dict[str, float]:
    """Best µs per call of each case over interleaved rounds."""
    real = sys.stderr
    _devnull_stderr()
    best = dict.fromkeys(CASES, float("inf"))
    try:
        for case in CASES:
            prepare(case, 500)()
        for _ in range(rounds):
            for case in CASES:
                run = prepare(case, calls)
                started = time.perf_counter()
                run()
                best[case] = min(best[case], (time.perf_counter() - started) / calls * 1e6)
    finally:
        sys.stderr = real
    return best


def instructions(cases: tuple[str, ...] = CASES, calls: int = 2000) -> dict[str, float]:
    """Instructions per call of each case, counted by callgrind (a run minus a dry run)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed")

    def count(case: str, dry: bool) -> int:
        done = subprocess.run(  # noqa: S603 - our own interpreter and script
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, case,
             str(calls), *(["--dry"] if dry else [])],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False,
        )  # fmt: skip
        found = _REFS.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind on {case!r} failed: {done.stderr[-1500:]}")
        return int(found.group(1).replace(",", ""))

    return {case: (count(case, False) - count(case, True)) / calls for case in cases}


def main() -> None:
    """Print the table asked for on the command line."""
    args = sys.argv[1:]
    if args and args[0] in CASES:
        one_case(args[0], int(args[1]), "--dry" in args)
        return
    if args[:1] == ["--instructions"]:
        for case, value in instructions(tuple(args[1:]) or CASES).items():
            print(f"{case:<12} {value:10,.0f} instructions/call")
        return
    results = timings()
    core = results["core"]
    for case, value in results.items():
        added = "" if case in ("core", "direct") else f"  (+{value - core:5.1f} over core)"
        print(f"{case:<12} {value:7.2f} us/call{added}")


if __name__ == "__main__":
    main()
