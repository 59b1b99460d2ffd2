"""Section 1: in-process dispatch, the WSGI callable called directly."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from . import direct_work
from . import plugins as real_plugins
from .apps import bare_app, build_falcon, build_flask, build_service, echo_reading_missing
from .modes import Mode
from .payloads import SMALL_BODY
from .progress import Progress
from .timing import Case, run_rounds, wsgi_case
from .wsgi import same_body

SECTION = "in-process"


def core_cases(mode: Mode) -> list[Case]:
    """The limit, the core, and the core with pass-through hooks in each scope."""
    environs = same_body(SMALL_BODY)
    cases = [
        wsgi_case("bare WSGI function", bare_app, environs, "limit"),
        wsgi_case("pyservice, no plugins", build_service(), environs, "pyservice", hooks=0),
        wsgi_case(
            "pyservice, handler tests request.data is not None",
            build_service(handler=echo_reading_missing),
            environs,
            "handler idiom",
        ),
    ]
    for scope in ("request", "operation"):
        for count in mode.hook_counts:
            service = build_service(**{f"{scope}_hooks": count})
            label = f"pyservice, {count} {scope} hook{'s' if count > 1 else ''}"
            cases.append(wsgi_case(label, service, environs, "pass-through hooks", hooks=count, scope=scope))
    return cases


def peer_cases() -> list[Case]:
    environs = same_body(SMALL_BODY)
    return [
        wsgi_case("Falcon", build_falcon(), environs, "peers"),
        wsgi_case("Flask", build_flask(), environs, "peers"),
    ]


def plugin_cases(stack: contextlib.ExitStack, progress: Progress) -> list[Case]:
    """One case per real plugin that is installed, and one with all the installed ones."""
    cases = []
    for label, makers in real_plugins.ENTRIES.items():
        case = _plugin_case(f"pyservice + {label}", makers, stack, progress)
        if case is not None:
            cases.append(case)
    # "All" runs with whichever packages are here, and says which are missing.
    present = []
    for maker in real_plugins.ALL:
        try:
            maker(contextlib.ExitStack())
        except real_plugins.Unavailable:
            continue
        present.append(maker)
    if present:
        missing = len(real_plugins.ALL) - len(present)
        label = (
            "pyservice + all plugins, cache miss" if not missing else "pyservice + all installed plugins, cache miss"
        )
        case = _plugin_case(label, present, stack, progress)
        if case is not None:
            cases.append(case)
    return cases


def _plugin_case(label: str, makers: list[Any], stack: contextlib.ExitStack, progress: Progress) -> Case | None:
    try:
        service, factory = real_plugins.build(makers, stack)
    except real_plugins.Unavailable as exc:
        progress.note(SECTION, f"skipped '{label}': {exc}")
        return None
    return wsgi_case(label, service, factory, "real plugins")


def direct_cases(stack: contextlib.ExitStack, progress: Progress) -> tuple[list[Case], dict[str, str]]:
    """Each plugin's work done directly with its library (suite/direct/), where its module is there."""
    cases, skipped = [], {}
    for pair in direct_work.PAIRS:
        try:
            call = direct_work.prepare(pair.name, stack)
        except real_plugins.Unavailable as exc:
            skipped[pair.name] = str(exc)
            progress.note(SECTION, f"skipped the direct work of {pair.name}: {exc}")
            continue
        cases.append(direct_work.case(pair, call))
    return cases, skipped


def run(mode: Mode, progress: Progress) -> dict[str, Any]:
    """Measure every case in interleaved rounds; ratios are to the bare function."""
    with contextlib.ExitStack() as stack:
        direct, skipped = direct_cases(stack, progress)
        cases = core_cases(mode) + plugin_cases(stack, progress) + direct + peer_cases()
        # The logging plugin's "stdout" output writes to sys.stdout as it is when a line is written.
        sink = stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        progress.step(SECTION, f"{len(cases)} cases, {mode.rounds} rounds of ~{mode.target}s each")
        results = run_rounds(SECTION, cases, rounds=mode.rounds, target=mode.target, progress=progress)
    bare, core = results[0], results[1]
    rows = [result.summary(bare) for result in results]
    for row, result in zip(rows, results, strict=True):
        row["us_over_core"] = (result.median - core.median) * 1e6
    hook_cost: dict[str, dict[str, float]] = {}
    for scope in ("request", "operation"):
        scoped = [(r.meta["hooks"], r.median) for r in results if r.meta.get("scope") == scope]
        hook_cost[scope] = {str(count): (median - core.median) * 1e6 / count for count, median in scoped}
    versus = direct_work.compare(rows, core.median * 1e6, skipped)
    return {"rows": rows, "us_per_hook": hook_cost, "versus_direct": versus}
