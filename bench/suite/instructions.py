"""Section 6: instructions per call, counted by callgrind.

Seconds move with whatever else a shared machine is doing; the number of
instructions a call executes does not. Each case runs in a process of its
own under ``valgrind --tool=callgrind`` twice: once making ``calls`` calls,
once building the same environs and making none (``--dry``). The
difference, divided by ``calls``, is what one call costs, start-up, imports
and the environs left out. Ratios are
the bare function's count over the case's, so they read like the calls/s
ratios of section 1 (higher is faster); an instruction is not a fixed slice
of time (a cache miss costs more than an addition), so the two agree only
roughly. Without valgrind on the machine the section is skipped with a note.

Each built-in plugin is counted beside the same work done directly with
its library (``plugin:<name>`` and ``direct:<name>``, see
``suite/direct_work.py``): what the plugin adds is its case's count less
the core's. The processes run two at a time (the count of one does not
depend on what else runs).

Run one case by hand: ``python -m suite.instructions CASE CALLS [--dry]``
from ``bench/`` (it makes the calls and prints nothing).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .direct_work import BY_NAME, PAIRS
from .modes import Mode
from .progress import Progress

SECTION = "instructions"
BENCH = Path(__file__).resolve().parents[1]

#: Each case: its label, and how ``build`` makes its app.
CASES = {
    "bare": "bare WSGI function",
    "core": "pyservice, no plugins",
    "request_hook": "pyservice, 1 request hook",
    "operation_hook": "pyservice, 1 operation hook",
    "falcon": "Falcon",
    "flask": "Flask",
    **{f"plugin:{pair.name}": pair.plugin_case for pair in PAIRS},
    **{f"direct:{pair.name}": f"direct: {pair.direct_label}" for pair in PAIRS},
}
_REFS = re.compile(r"refs:\s+([\d,]+)")
#: The exit status of a process whose case cannot run here (a package or a direct module missing).
UNAVAILABLE = 3


def build(case: str) -> Any:
    """The app of one case, imported only in the process that measures it."""
    from . import apps

    if case == "bare":
        return apps.bare_app
    if case == "core":
        return apps.build_service()
    if case == "request_hook":
        return apps.build_service(request_hooks=1)
    if case == "operation_hook":
        return apps.build_service(operation_hooks=1)
    if case == "falcon":
        return apps.build_falcon()
    if case == "flask":
        return apps.build_flask()
    raise SystemExit(f"unknown case {case!r}; known: {', '.join(CASES)}")


def make_calls(case: str, calls: int, dry: bool) -> None:
    """What runs under callgrind: warm the app, build ``calls`` environs, and call with them unless ``dry``."""
    from . import direct_work
    from . import plugins as real_plugins
    from .payloads import SMALL_BODY
    from .wsgi import run_batch, same_body

    with contextlib.ExitStack() as stack:
        # The logging plugin's "stdout" output: to os.devnull, as the direct work's lines.
        stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        try:
            if case.startswith("direct:"):
                call = direct_work.prepare(case.removeprefix("direct:"), stack)
                direct_work.run_calls(call, 100)  # as the apps: the first calls specialise the bytecode
                if not dry:
                    direct_work.run_calls(call, calls)
                return
            if case.startswith("plugin:"):
                entry = BY_NAME[case.removeprefix("plugin:")].plugin_entry
                app, factory = real_plugins.build(real_plugins.ENTRIES[entry], stack)
            else:
                app, factory = build(case), same_body(SMALL_BODY)
        except real_plugins.Unavailable as exc:
            print(f"UNAVAILABLE {exc}", file=sys.stderr)
            raise SystemExit(UNAVAILABLE) from None
        environs = factory(100 + calls)
        run_batch(app, environs[:100])  # first calls specialise the bytecode and fill caches
        if not dry:
            run_batch(app, environs[100:])


def count(valgrind: str, case: str, calls: int, dry: bool) -> int:
    """Instructions executed by one process running ``make_calls(case, calls, dry)``."""
    done = subprocess.run(
        [
            valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, "-m", "suite.instructions", case, str(calls), *(["--dry"] if dry else []),
        ],
        cwd=BENCH,
        capture_output=True,
        text=True,
        # The same hash seed for every process: dict probes then take the same paths.
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )  # fmt: skip
    found = _REFS.search(done.stderr)
    if done.returncode == UNAVAILABLE:
        reason = next((line for line in done.stderr.splitlines() if line.startswith("UNAVAILABLE ")), "")
        raise LookupError(reason.removeprefix("UNAVAILABLE ") or f"{case} cannot run here")
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind on {case!r} failed ({done.returncode}): {done.stderr[-1500:]}")
    return int(found.group(1).replace(",", ""))


def run(mode: Mode, progress: Progress) -> dict[str, Any]:
    """Count every case of ``mode.instruction_cases``; ratios are to the bare function."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        progress.note(SECTION, "valgrind is not installed (apt-get install valgrind); section skipped")
        return {"rows": [], "calls": 0, "versus_direct": []}
    calls = mode.instruction_calls
    per_call = {}

    def both(case: str) -> tuple[str, float | str]:
        try:
            with ThreadPoolExecutor(2) as pool:
                baseline, total = pool.map(lambda dry: count(valgrind, case, calls, dry), (True, False))
        except LookupError as exc:
            return case, str(exc)
        return case, (total - baseline) / calls

    # Two processes at a time: the case's two (with and without the calls), one case after another.
    for case in mode.instruction_cases:
        _, value = both(case)
        if isinstance(value, str):
            progress.note(SECTION, f"skipped '{CASES[case]}': {value}")
            continue
        per_call[case] = value
        progress.step(SECTION, f"{CASES[case]}: {per_call[case]:,.0f} instructions per call")
    bare = per_call.get("bare")
    rows = [
        {
            "case": case,
            "label": CASES[case],
            "instructions_per_call": value,
            "ratio": None if not bare else bare / value,
        }
        for case, value in per_call.items()
    ]
    return {"rows": rows, "calls": calls, "versus_direct": versus(per_call)}


def versus(per_call: dict[str, float]) -> list[dict[str, Any]]:
    """Each plugin's added instructions (its case less the core's) beside its direct work's."""
    core = per_call.get("core")
    out = []
    for pair in PAIRS:
        plugin, direct = per_call.get(f"plugin:{pair.name}"), per_call.get(f"direct:{pair.name}")
        if plugin is None and direct is None:
            continue
        row: dict[str, Any] = {"plugin": pair.name, "plugin_instructions": plugin, "direct_instructions": direct}
        if plugin is not None and core is not None:
            row["added_instructions"] = plugin - core
            if direct:
                row["ratio"] = row["added_instructions"] / direct
        out.append(row)
    return out


if __name__ == "__main__":
    make_calls(sys.argv[1], int(sys.argv[2]), dry="--dry" in sys.argv[3:])
