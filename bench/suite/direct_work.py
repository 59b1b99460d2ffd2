"""Each built-in plugin beside the same work done directly with its own library.

The direct versions live in ``suite/direct/<plugin>.py``, one module per
plugin, each with its own documented interface; this module knows those
interfaces and turns each into a call with no arguments (``functools.partial``,
so no Python frame is added), prepared once. A module that is not there,
or whose interface is not the one written here, is skipped with a note, as
a missing plugin package is.

The issue's target for each plugin: what it adds to a call (its case's
µs less the core's, measured in the same interleaved rounds) is at most
2x the direct work, plus 1 µs for its hook.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .payloads import SMALL, SMALL_BODY
from .plugins import Unavailable
from .timing import Case

#: The allowance of the issue: a plugin adds at most FACTOR x the direct work + HOOK_US.
FACTOR = 2.0
HOOK_US = 1.0


@dataclass(frozen=True)
class Pair:
    """A plugin case of the in-process section and the direct work it is measured against."""

    name: str  # suite.direct.<name>
    plugin_case: str  # the label of the plugin's in-process case
    plugin_entry: str  # its key in suite.plugins.ENTRIES
    direct_label: str


PAIRS = [
    # The plugin's own output (stdout, pointed at os.devnull) against structlog's BytesLogger on os.devnull.
    Pair("logging", "pyservice + logging, to stdout", "logging, to stdout", "structlog: one JSON line, keys redacted"),
    Pair("auth", "pyservice + auth, API key", "auth, API key", "HMAC-SHA256 + compare_digest + dict lookup"),
    Pair("throttle", "pyservice + throttle, memory", "throttle, memory", "GCRA on a dict, with the headers"),
    Pair("cache", "pyservice + cache hit", "cache hit", "SHA-256 key + TTLCache lookup"),
    Pair("sqlalchemy", "pyservice + sqlalchemy, SQLite", "sqlalchemy, SQLite", "Session(engine), commit, close"),
    Pair(
        "idempotency",
        "pyservice + idempotency, new key",
        "idempotency, new key",
        "BLAKE2b + orjson + dict claim, store",
    ),
]
BY_NAME = {pair.name: pair for pair in PAIRS}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(f"suite.direct.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"suite.direct.{name}", "suite.direct"):
            raise Unavailable(f"bench/suite/direct/{name}.py is not there yet") from None
        raise Unavailable(f"bench/suite/direct/{name}.py needs {exc.name}, which is not installed") from None


def _logging(module: Any, stack: contextlib.ExitStack) -> Callable[[], object]:
    sink = stack.enter_context(open(os.devnull, "wb"))  # noqa: SIM115 - closed by the stack
    return functools.partial(module.build(sink), module.example_fields())


def _auth(module: Any, stack: contextlib.ExitStack) -> Callable[[], object]:
    check = module.build(module.PEPPER, {module.PREFIX: (module.HASH, "bench-client")})
    if check(module.HEADER) != "bench-client":
        raise Unavailable("suite.direct.auth refuses its own key")
    return functools.partial(check, module.HEADER)


def _throttle(module: Any, stack: contextlib.ExitStack) -> Callable[[], object]:
    # The plugin case's limit, never reached; the key the plugin would make for the bench's caller.
    return functools.partial(module.build(count=1_000_000, period=1.0), "bench/echo/127.0.0.1")


def _cache(module: Any, stack: contextlib.ExitStack) -> Callable[[], object]:
    import orjson

    from .apps import expected_result

    cache = module.build()
    cache.store(SMALL_BODY, orjson.dumps(expected_result(SMALL)))
    if cache.hit(SMALL_BODY) is None:
        raise Unavailable("suite.direct.cache misses what it stored")
    return functools.partial(cache.hit, SMALL_BODY)


def _sqlalchemy(module: Any, stack: contextlib.ExitStack) -> Callable[[], object]:
    import tempfile

    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-direct-sqlalchemy-"))
    # The plugin case's handler does not query: the session's life cycle alone, here as there.
    engine = module.make_engine(f"sqlite:///{folder}/direct.sqlite3")
    stack.callback(engine.dispose)
    call: Callable[[], object] = module.build(engine)
    return call


def _idempotency(module: Any, stack: contextlib.ExitStack) -> Callable[[], object]:
    import orjson

    from .apps import expected_result

    direct = module.build()
    answer = orjson.dumps(expected_result(SMALL))
    if not direct.first(SMALL_BODY, answer) or direct.replay("key-0", SMALL_BODY) != answer:
        raise Unavailable("suite.direct.idempotency does not replay what it stored")
    return functools.partial(direct.first, SMALL_BODY, answer)


ADAPTERS: dict[str, Callable[[Any, contextlib.ExitStack], Callable[[], object]]] = {
    "logging": _logging,
    "auth": _auth,
    "throttle": _throttle,
    "cache": _cache,
    "sqlalchemy": _sqlalchemy,
    "idempotency": _idempotency,
}


def prepare(name: str, stack: contextlib.ExitStack) -> Callable[[], object]:
    """The direct work of plugin ``name`` as a call with no arguments.

    Raises:
        Unavailable: the module is not there, or its interface is not the one this adapter knows.
    """
    module = _module(name)
    try:
        call = ADAPTERS[name](module, stack)
        call()
    except Unavailable:
        raise
    except (AttributeError, TypeError) as exc:
        raise Unavailable(
            f"bench/suite/direct/{name}.py: its interface is not the one suite/direct_work.py knows ({exc})"
        ) from None
    return call


def run_calls(call: Callable[[], object], n: int) -> None:
    for _ in itertools.repeat(None, n):
        call()


def case(pair: Pair, call: Callable[[], object]) -> Case:
    """An in-process case making ``call`` n times (the loop costs some 20 ns a call)."""

    def batch(n: int) -> float:
        gc.collect()
        started = time.perf_counter()
        run_calls(call, n)
        return time.perf_counter() - started

    return Case(f"direct: {pair.direct_label}", batch, "direct work", {"direct": pair.name})


def compare(rows: list[dict[str, Any]], core_us: float, skipped: dict[str, str]) -> list[dict[str, Any]]:
    """Each plugin's added µs beside its direct work's, and the issue's allowance."""
    by_label = {row["label"]: row for row in rows}
    out = []
    for pair in PAIRS:
        plugin = by_label.get(pair.plugin_case)
        direct = next((row for row in rows if row.get("direct") == pair.name), None)
        row: dict[str, Any] = {"plugin": pair.name, "plugin_case": pair.plugin_case, "direct_label": pair.direct_label}
        if plugin is not None:
            row["plugin_us"] = plugin["us_per_call"]
            row["added_us"] = plugin["us_per_call"] - core_us
        if direct is not None:
            row["direct_us"] = direct["us_per_call"]
        if plugin is not None and direct is not None:
            row["ratio"] = row["added_us"] / row["direct_us"]
            row["allowance_us"] = FACTOR * row["direct_us"] + HOOK_US
            row["met"] = row["added_us"] <= row["allowance_us"]
        if pair.name in skipped:
            row["skipped"] = skipped[pair.name]
        out.append(row)
    return out
