"""What a run writes: the machine and versions, results.json, results.md and the plots."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .served import wrk_version

PACKAGES = [
    "pyservice-core", "pyservice-logging", "pyservice-auth", "pyservice-throttle", "pyservice-cache",
    "pyservice-sqlalchemy", "orjson", "falcon", "flask", "werkzeug", "gunicorn", "granian", "requests",
    "urllib3", "structlog", "sqlalchemy", "cachetools", "psycopg", "redis", "matplotlib",
]  # fmt: skip

TARGETS = {
    "core_ratio": ("Core with no plugins, in-process: calls/s relative to the bare function", 0.5),
    "hook_us": ("One pass-through hook, the dearer scope: µs per call (slope from 1 to 20 hooks)", 1.0),
    "http_ratio": ("Over HTTP under the default server (pyservice): req/s relative to the bare app", 0.8),
    "server_ratio": ("The bare app under the default server (pyservice): req/s relative to the fastest server's", 0.8),
    "client_ratio": ("The Client: calls/s relative to a bare requests.Session", 2.5),
    "plugins_within": (
        "Built-in plugins adding at most 2x their direct work + 1 µs, in-process (share of those measured)",
        1.0,
    ),
    "service_read_ratio": (
        "The items read (every plugin on, SQLite + memory) under pyservice serve's default server: "
        "req/s relative to the bare function under granian",
        0.4,
    ),
    "service_read_us": ("The items read (cache hit, every plugin on), in-process: µs per call", 40.0),
}
#: Targets where less is better.
BELOW = {"hook_us", "service_read_us"}


def _read(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine() -> dict[str, Any]:
    return {
        "cpu": _read("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory": _read("/proc/meminfo", "MemTotal"),
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average_at_start": list(os.getloadavg()),
    }


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    found["wrk"] = wrk_version()
    return found


def header(mode: str, argv: list[str]) -> dict[str, Any]:
    return {
        "mode": mode,
        "command": " ".join(["python", *argv]),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
    }


# -- targets ---------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets next to what this run measured (reported, never asserted)."""
    measured: dict[str, float | None] = dict.fromkeys(TARGETS)
    rows_in = results.get("in-process", {}).get("rows", [])
    core = next((r for r in rows_in if r["label"] == "pyservice, no plugins"), None)
    if core:
        measured["core_ratio"] = core["ratio"]
    slopes = results.get("scaling", {}).get("hooks", {}).get("us_per_hook", {})
    if slopes:
        measured["hook_us"] = max((v for v in slopes.values() if v is not None), default=None)
    http_rows = results.get("http", {}).get("rows", [])
    http = next((r for r in http_rows if r["server"] == "pyservice" and r["app"] == "pyservice"), None)
    if http:
        measured["http_ratio"] = http["ratio"]
    bare = {r["server"]: r["requests_per_s"] for r in http_rows if r["app"] == "bare"}
    if "pyservice" in bare:
        measured["server_ratio"] = bare["pyservice"] / max(bare.values())
    client_rows = results.get("client", {}).get("rows", [])
    client = next((r for r in client_rows if r["label"] == "pyservice Client"), None)
    if client:
        measured["client_ratio"] = client["ratio_to_requests"]
    versus = [r for r in results.get("in-process", {}).get("versus_direct", []) if "met" in r]
    if versus:
        measured["plugins_within"] = sum(r["met"] for r in versus) / len(versus)
    service = results.get("service", {})
    read = next(
        (
            r
            for r in service.get("rows", [])
            if r["backends"] == "embedded" and r["case"] == "example" and r["operation"] == "read"
        ),
        None,
    )
    if read:
        measured["service_read_ratio"] = read["ratio_to_granian"]
    if service.get("inprocess"):
        measured["service_read_us"] = service["inprocess"]["read_us"]
    rows = []
    for key, (what, goal) in TARGETS.items():
        value = measured[key]
        met = None if value is None else (value < goal if key in BELOW else value >= goal)
        rows.append({"target": key, "what": what, "goal": goal, "measured": value, "met": met})
    return rows


# -- markdown ----------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _us(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = [f"# Benchmark results ({meta['mode']} run)\n"]
    m = meta["machine"]
    out.append(
        f"`{meta['command']}`, {meta['started']}, {meta.get('seconds', 0):.0f} s. "
        f"{m['cpu']}, {m['cores']} cores, {m['memory']}, {m['system']}, {m['python']}; "
        f"load average {m['load_average_at_start'][0]:.2f} at the start.\n"
    )
    out.append(
        "Versions: " + ", ".join(f"{name} {v}" for name, v in meta["versions"].items() if v != "not installed") + ".\n"
    )
    missing = [name for name, v in meta["versions"].items() if v == "not installed"]
    if missing:
        out.append("Not installed: " + ", ".join(missing) + ".\n")

    out.append("## Targets\n")
    out.append(
        _table(
            ["target", "goal", "measured", "met"],
            [
                [
                    t["what"],
                    f"{'<' if t['target'] in BELOW else '≥'} {t['goal']}",
                    "—" if t["measured"] is None else f"{t['measured']:.3f}",
                    "—" if t["met"] is None else ("yes" if t["met"] else "**no**"),
                ]
                for t in results["targets"]
            ],
        )
    )

    section = results.get("in-process")
    if section:
        out.append("## 1. In-process dispatch\n")
        out.append(
            "The WSGI callable called directly, a fresh environ per call, answers consumed and closed as a "
            "server does. Median of the rounds (min-max beside it); ratio: calls/s relative to the bare function.\n"
        )
        out.append(
            _table(
                ["case", "µs/call", "min-max", "calls/s", "ratio to bare", "µs over core"],
                [
                    [
                        r["label"],
                        _us(r["us_per_call"]),
                        f"{_us(r['us_min'])}-{_us(r['us_max'])}",
                        _n(r["calls_per_s"]),
                        f"{r['ratio']:.3f}",
                        "" if r["group"] in ("limit", "pyservice") else f"{r['us_over_core']:+.2f}",
                    ]
                    for r in section["rows"]
                ],
            )
        )
        per_hook = section["us_per_hook"]
        out.append(
            "Per hook, (µs with N hooks - µs with none) / N: "
            + "; ".join(
                f"{scope} scope " + ", ".join(f"N={n}: {v:.3f}" for n, v in values.items())
                for scope, values in per_hook.items()
            )
            + ".\n"
        )
        out.append(versus_direct(section, results.get("instructions")))

    section = results.get("http")
    if section and section["rows"]:
        s = section["settings"]
        out.append("## 2. Over HTTP on 127.0.0.1\n")
        out.append(
            f"{s['workers']} worker processes; wrk, {s['wrk_threads']} thread, {s['connections']} connections, "
            f"{s['seconds']} s per run, {s['rounds']} interleaved rounds (median, min-max). "
            "Ratio: requests/s relative to the bare app under the same server.\n"
        )
        out.append(
            _table(
                ["server", "app", "req/s", "min-max", "ratio to bare", "p50 ms", "p90 ms", "p99 ms", "errors"],
                [
                    [
                        r["server"],
                        r["label"],
                        _n(r["requests_per_s"]),
                        f"{_n(r['requests_per_s_min'])}-{_n(r['requests_per_s_max'])}",
                        f"{r['ratio']:.3f}",
                        f"{r['p50_ms']:.2f}",
                        f"{r['p90_ms']:.2f}",
                        f"{r['p99_ms']:.2f}",
                        str(r["errors"]),
                    ]
                    for r in section["rows"]
                ],
            )
        )

    section = results.get("client")
    if section:
        out.append("## 3. The client\n")
        out.append(
            "One caller, kept-alive connections, against granian (1 worker) serving the bare app. "
            "Each call encodes the fields, POSTs them, reads and decodes the answer.\n"
        )
        out.append(
            _table(
                ["client", "µs/call", "min-max", "calls/s", "ratio to http.client", "ratio to requests.Session"],
                [
                    [
                        r["label"],
                        _us(r["us_per_call"]),
                        f"{_us(r['us_min'])}-{_us(r['us_max'])}",
                        _n(r["calls_per_s"]),
                        f"{r['ratio']:.3f}",
                        f"{r['ratio_to_requests']:.3f}",
                    ]
                    for r in section["rows"]
                ],
            )
        )

    section = results.get("scaling")
    if section:
        out.append("## 4. How the cost grows\n")
        hooks = section["hooks"]
        by = {(r["scope"], r["hooks"]): r["us_per_call"] for r in hooks["rows"]}
        counts = sorted({r["hooks"] for r in hooks["rows"]})
        out.append("### Pass-through hooks\n")
        out.append(
            _table(
                ["hooks", "request scope µs/call", "operation scope µs/call"],
                [[str(n), _us(by[("request", n)]), _us(by[("operation", n)])] for n in counts],
            )
        )
        slopes = hooks["us_per_hook"]
        out.append(
            "One more hook (least-squares slope from 1 to 20 hooks): "
            + ", ".join(f"{scope} scope {v:.3f} µs" for scope, v in slopes.items() if v is not None)
            + ".\n"
        )
        out.append("### Payload size (the answer echoes the request's data)\n")
        rows = section["payload"]["rows"]
        sizes = sorted({r["size"] for r in rows})
        by_size = {(r["impl"], r["size"]): r for r in rows}
        out.append(
            _table(
                ["request bytes", "bare µs/call", "pyservice µs/call", "ratio", "pyservice MB/s (in + out)"],
                [
                    [
                        _n(size),
                        _us(by_size[("bare", size)]["us_per_call"]),
                        _us(by_size[("pyservice", size)]["us_per_call"]),
                        f"{by_size[('pyservice', size)]['ratio']:.3f}",
                        _n(by_size[("pyservice", size)]["mb_per_s"]),
                    ]
                    for size in sizes
                ],
            )
        )
        out.append("### Operations declared\n")
        out.append(
            _table(
                ["operations", "µs/call", "relative to the smallest", "Service built in ms", "Client built in ms"],
                [
                    [
                        _n(r["operations"]),
                        _us(r["us_per_call"]),
                        f"{r['ratio']:.3f}",
                        f"{r['service_build_ms']:.1f}",
                        f"{r['client_build_ms']:.1f}",
                    ]
                    for r in section["operations"]["rows"]
                ],
            )
        )

    section = results.get("memory")
    if section:
        out.append("## 5. Memory\n")
        out.append(
            "tracemalloc, in-process: the peak held during one call above what was held before it (median), and "
            "what stays allocated per call after many calls and a full collection.\n"
        )
        out.append(
            _table(
                ["app", "peak bytes/call", "retained bytes/call", "retained blocks/call", "calls"],
                [
                    [
                        r["label"],
                        _n(r["peak_bytes_per_call"]),
                        f"{r['retained_bytes_per_call']:.1f}",
                        f"{r['retained_blocks_per_call']:.3f}",
                        _n(r["calls"]),
                    ]
                    for r in section["rows"]
                ],
            )
        )
    http_memory = (results.get("http") or {}).get("memory")
    if http_memory:
        out.append(
            "Worker processes over HTTP (/proc: VmRSS of the largest worker before and after the load, and its "
            "VmHWM, the peak):\n"
        )
        out.append(
            _table(
                ["server", "app", "requests served", "RSS before MiB", "RSS after MiB", "peak RSS MiB"],
                [
                    [
                        r["server"],
                        r["label"],
                        _n(r["requests"]),
                        f"{r['rss_before_mib']:.1f}",
                        f"{r['rss_after_mib']:.1f}",
                        f"{r['peak_rss_mib']:.1f}",
                    ]
                    for r in http_memory
                ],
            )
        )
    section = results.get("instructions")
    if section and section["rows"]:
        out.append("## 6. Instructions per call\n")
        out.append(
            f"callgrind's count of the instructions one call executes ({_n(section['calls'])} calls in a process, "
            "less the same process making none): unlike seconds, the same on a busy machine as on an idle one. "
            "Ratio: the bare function's count over the case's, so higher is faster, as in section 1.\n"
        )
        out.append(
            _table(
                ["case", "instructions/call", "ratio to bare"],
                [
                    [r["label"], _n(r["instructions_per_call"]), "—" if r["ratio"] is None else f"{r['ratio']:.3f}"]
                    for r in section["rows"]
                ],
            )
        )
    section = results.get("service")
    if section and (section.get("rows") or section.get("inprocess")):
        out.append(service_markdown(section))
    notes = meta.get("notes")
    if notes:
        out.append("## Notes\n")
        out.append("".join(f"- {note}\n" for note in notes))
    return "\n".join(out)


def versus_direct(section: dict[str, Any], instructions: dict[str, Any] | None) -> str:
    """Each built-in plugin beside the same work done directly with its library (suite/direct/)."""
    rows = section.get("versus_direct") or []
    if not rows:
        return ""
    counted = {r["plugin"]: r for r in (instructions or {}).get("versus_direct", [])}
    out = [
        "### Each plugin beside its direct work\n",
        "What each plugin adds to a call (its row above less the core's, same rounds) beside the same work done "
        "directly with its own library (`bench/suite/direct/<plugin>.py`, measured in the same rounds). The "
        "issue's allowance: at most 2x the direct work + 1 µs. Instructions: section 6's counts, the plugin's case "
        "less the core's, beside the direct work's.\n",
    ]
    table = []
    for r in rows:
        c = counted.get(r["plugin"], {})
        added_i, direct_i = c.get("added_instructions"), c.get("direct_instructions")
        table.append(
            [
                r["plugin"],
                r["plugin_case"].removeprefix("pyservice + "),
                r["direct_label"] if "direct_us" in r else f"— ({r.get('skipped', 'not measured')})",
                f"{r['added_us']:+.2f}" if "added_us" in r else "—",
                _us(r["direct_us"]) if "direct_us" in r else "—",
                f"{r['ratio']:.2f}" if "ratio" in r else "—",
                _us(r["allowance_us"]) if "allowance_us" in r else "—",
                ("yes" if r["met"] else "**no**") if "met" in r else "—",
                _n(added_i) if added_i is not None else "—",
                _n(direct_i) if direct_i is not None else "—",
                f"{c['ratio']:.2f}" if c.get("ratio") is not None else "—",
            ]
        )
    out.append(
        _table(
            [
                "plugin",
                "case",
                "direct work",
                "plugin adds µs",
                "direct µs",
                "ratio",
                "allowance µs",
                "within",
                "plugin adds instr.",
                "direct instr.",
                "instr. ratio",
            ],
            table,
        )
    )
    return "\n".join(out)


def service_markdown(section: dict[str, Any]) -> str:
    """Section 7: the items example over HTTP, its breakdown, and in-process."""
    s = section["settings"]
    out = ["## 7. A real service\n"]
    out.append(
        "The README's main job, examples/items with every plugin on (logging, auth with an API key, throttle, "
        f"cache, sqlalchemy), served by `pyservice serve` with its default server ({s['default_server']}) and "
        f"{s['workers']} workers; wrk, {s['wrk_threads']} thread, {s['connections']} connections, {s['seconds']} s "
        f"per run, {s['rounds']} interleaved round(s) (median, min-max). Every call carries the API key. **read**: "
        "`get_item` of an item stored first (a cache hit); **write**: `put_item`, a new row each call (the bench's "
        f"copy of api.json raises its throttle limit to {s['write_limit']}). The limit: the bare WSGI function of "
        "section 2 under granian with its defaults, and under `pyservice serve`'s default server, in the same "
        f"rounds. Target: the read at ≥ {s['read_target']} of the bare function under granian.\n"
    )
    backends_label = {"embedded": "SQLite + memory", "shared": "PostgreSQL + Redis"}
    rows = section.get("rows") or []
    for group in dict.fromkeys(r["backends"] for r in rows):
        out.append(f"### {backends_label.get(group, group)}\n")
        out.append(
            _table(
                ["case", "call", "req/s", "min-max", "÷ bare, granian", "÷ bare, default", "p50 ms", "p90 ms",
                 "p99 ms", "p99.9 ms", "errors"],
                [
                    [
                        r["label"],
                        r["operation"],
                        _n(r["requests_per_s"]),
                        f"{_n(r['requests_per_s_min'])}-{_n(r['requests_per_s_max'])}",
                        f"{r['ratio_to_granian']:.3f}",
                        f"{r['ratio_to_default']:.3f}",
                        f"{r['p50_ms']:.2f}",
                        f"{r['p90_ms']:.2f}",
                        f"{r['p99_ms']:.2f}",
                        f"{r['p999_ms']:.2f}",
                        str(r["errors"]),
                    ]
                    for r in rows
                    if r["backends"] == group
                ],
            )
        )  # fmt: skip
    breakdown = section.get("breakdown") or []
    if breakdown:
        out.append("### What each plugin costs over HTTP\n")
        out.append(
            "Each plugin switched off in turn (`bench/suite/items.py`: the same api and handlers; with sqlalchemy "
            "off, the handlers use SQLAlchemy directly), against every plugin on, in the same rounds. "
            "µs per request: the server's time per request (1 / req/s) with every plugin on, less with this one "
            "off (negative: the plugin saves time, as the cache does on a read).\n"
        )
        out.append(
            _table(
                [
                    "backends",
                    "call",
                    "case",
                    "req/s",
                    "every plugin on",
                    "speed-up",
                    "µs per request",
                    "÷ bare, granian",
                ],
                [
                    [
                        backends_label.get(r["backends"], r["backends"]),
                        r["operation"],
                        r["label"],
                        _n(r["requests_per_s"]),
                        _n(r["every_plugin_on"]),
                        f"{r['speedup']:.2f}x",
                        f"{r['us_per_request']:+.0f}",
                        f"{r['ratio_to_granian']:.3f}",
                    ]
                    for r in breakdown
                ],
            )
        )
    inprocess = section.get("inprocess") or {}
    if inprocess.get("rows"):
        out.append("### In-process\n")
        out.append(
            "The same service objects called in-process (SQLite + memory; the access log to `os.devnull`), a fresh "
            f"environ per call, interleaved rounds. The cache-hit read with every plugin on: "
            f"**{inprocess['read_us']:.1f} µs** (target: under {inprocess['target_us']:.0f} µs).\n"
        )
        out.append(
            _table(
                ["case", "µs/call", "min-max", "calls/s", "ratio to bare"],
                [
                    [
                        r["label"],
                        _us(r["us_per_call"]),
                        f"{_us(r['us_min'])}-{_us(r['us_max'])}",
                        _n(r["calls_per_s"]),
                        f"{r['ratio']:.3f}",
                    ]
                    for r in inprocess["rows"]
                ],
            )
        )
    return "\n".join(out)


# -- plots -----------------------------------------------------------------------------


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """Write the PNGs; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    title_suffix = f" ({results['meta']['mode']} run)"

    section = results.get("in-process")
    if section:
        rows = section["rows"]
        fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.2))
        labels = [r["label"] for r in rows][::-1]
        values = [r["us_per_call"] for r in rows][::-1]
        low = [r["us_per_call"] - r["us_min"] for r in rows][::-1]
        high = [r["us_max"] - r["us_per_call"] for r in rows][::-1]
        colours = {
            "limit": "#555555",
            "pyservice": "#1f77b4",
            "pass-through hooks": "#6baed6",
            "handler idiom": "#c6dbef",
            "real plugins": "#9ecae1",
            "peers": "#ff7f0e",
        }
        ax.barh(labels, values, xerr=[low, high], color=[colours.get(r["group"], "#999") for r in rows][::-1])
        ax.set_xscale("log")
        # Room on the right for the labels, which start past each whisker's end so that none crosses them.
        ax.set_xlim(right=max(r["us_max"] for r in rows) * 12)
        ax.set_xlabel("µs per call (log scale; bars: median, whiskers: min-max)")
        for y, r in enumerate(rows[::-1]):
            ax.text(r["us_max"] * 1.15, y, f"{r['ratio']:.2f}x bare", va="center", fontsize=8)
        ax.set_title("In-process dispatch" + title_suffix)
        fig.tight_layout()
        fig.savefig(out / "inprocess.png", dpi=110)
        plt.close(fig)
        written.append("inprocess.png")

    section = results.get("scaling")
    if section:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        hooks = section["hooks"]["rows"]
        for scope in ("request", "operation"):
            points = sorted((r["hooks"], r["us_per_call"]) for r in hooks if r["scope"] == scope)
            axes[0].plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{scope} scope")
        axes[0].set_ylim(bottom=0)
        axes[0].set_xlabel("pass-through hooks")
        axes[0].set_ylabel("µs per call")
        axes[0].set_title("Hooks")
        _legend_below(axes[0])
        payload = section["payload"]["rows"]
        for impl in ("bare", "pyservice"):
            points = sorted((r["size"], r["us_per_call"]) for r in payload if r["impl"] == impl)
            axes[1].plot([p[0] for p in points], [p[1] for p in points], marker="o", label=impl)
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("request bytes (answer echoes it)")
        axes[1].set_ylabel("µs per call")
        axes[1].set_title("Payload size")
        _legend_below(axes[1])
        ops = section["operations"]["rows"]
        axes[2].plot([r["operations"] for r in ops], [r["us_per_call"] for r in ops], marker="o", label="µs per call")
        axes[2].set_xscale("log")
        axes[2].set_xlabel("operations declared")
        axes[2].set_ylabel("µs per call")
        axes[2].set_ylim(bottom=0, top=max(r["us_per_call"] for r in ops) * 1.15)
        twin = axes[2].twinx()
        twin.plot(
            [r["operations"] for r in ops],
            [r["service_build_ms"] for r in ops],
            marker="s",
            color="#ff7f0e",
            label="Service build ms",
        )
        twin.set_yscale("log")
        twin.set_ylabel("Service build ms (log)")
        axes[2].set_title("Operations declared")
        # One legend for both axes of the panel, below it: inside, it would hide a point.
        _legend_below(axes[2], twin)
        fig.suptitle("How the cost grows" + title_suffix)
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append("scaling.png")

    section = results.get("http")
    if section and section["rows"]:
        rows = section["rows"]
        servers = list(dict.fromkeys(r["server"] for r in rows))
        apps = list(dict.fromkeys(r["label"] for r in rows))
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(apps)
        for i, app in enumerate(apps):
            xs, ys, errs = [], [], [[], []]
            for j, server in enumerate(servers):
                r = next((r for r in rows if r["server"] == server and r["label"] == app), None)
                if r:
                    xs.append(j + i * width)
                    ys.append(r["requests_per_s"])
                    errs[0].append(r["requests_per_s"] - r["requests_per_s_min"])
                    errs[1].append(r["requests_per_s_max"] - r["requests_per_s"])
            ax.bar(xs, ys, width, yerr=errs, label=app)
        ax.set_xticks([j + width * (len(apps) - 1) / 2 for j in range(len(servers))], servers)
        ax.set_ylabel("requests/s (median, whiskers min-max)")
        ax.set_title("Over HTTP, 2 workers, wrk" + title_suffix)
        # Beside the axes, not on them: wherever it sat inside, some run's whisker would pass under it.
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        fig.savefig(out / "http.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append("http.png")

    section = results.get("client")
    if section:
        rows = section["rows"][::-1]
        fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.3))
        values = [r["calls_per_s"] for r in rows]
        # The rounds' fastest and slowest calls, as calls/s: the whiskers the other plots have.
        fastest = [1e6 / r["us_min"] for r in rows]
        slowest = [1e6 / r["us_max"] for r in rows]
        ax.barh(
            [r["label"] for r in rows],
            values,
            xerr=[
                # At 0 at least: with one round, median and extremes are one call, a last bit apart.
                [max(0.0, v - low) for v, low in zip(values, slowest, strict=True)],
                [max(0.0, high - v) for v, high in zip(values, fastest, strict=True)],
            ],
            color=["#555555" if r.get("group") == "limit" else "#1f77b4" for r in rows],
        )
        for y, (r, high) in enumerate(zip(rows, fastest, strict=True)):
            ax.text(high * 1.02, y, f"{r['calls_per_s']:,.0f}/s", va="center", fontsize=8)
        ax.set_xlim(right=max(fastest) * 1.18)
        ax.set_xlabel("calls/s, one caller (bars: median, whiskers: min-max)")
        ax.set_title("Clients against granian serving the bare app" + title_suffix)
        fig.tight_layout()
        fig.savefig(out / "client.png", dpi=110)
        plt.close(fig)
        written.append("client.png")
    section = results.get("service")
    if section and (section.get("rows") or section.get("inprocess")):
        service_plot(section, out / "service.png", title_suffix, plt)
        written.append("service.png")
    return written


def _legend_below(ax: Any, *more: Any) -> None:
    # The legend of one panel (and its twin axes), under its x label, where no point can sit.
    handles, labels = ax.get_legend_handles_labels()
    for other in more:
        extra_handles, extra_labels = other.get_legend_handles_labels()
        handles += extra_handles
        labels += extra_labels
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(labels), frameon=False)


def service_plot(section: dict[str, Any], path: Path, title_suffix: str, plt: Any) -> None:
    """Req/s of every case over HTTP per backend set (reads and writes), and the in-process µs per call."""
    rows = section.get("rows") or []
    groups = list(dict.fromkeys(r["backends"] for r in rows))
    inprocess = (section.get("inprocess") or {}).get("rows") or []
    panels = len(groups) + (1 if inprocess else 0)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 6), squeeze=False)
    names = {"embedded": "SQLite + memory", "shared": "PostgreSQL + Redis"}
    colours = {"bare": "#555555", "read": "#1f77b4", "write": "#ff7f0e"}
    for ax, group in zip(axes[0], groups, strict=False):
        here = [r for r in rows if r["backends"] == group]
        labels = [f"{r['label']}: {r['operation']}" if r["operation"] != "bare" else r["label"] for r in here][::-1]
        values = [r["requests_per_s"] for r in here][::-1]
        low = [r["requests_per_s"] - r["requests_per_s_min"] for r in here][::-1]
        high = [r["requests_per_s_max"] - r["requests_per_s"] for r in here][::-1]
        ax.barh(labels, values, xerr=[low, high], color=[colours[r["operation"]] for r in here][::-1])
        bare = next(r["requests_per_s"] / r["ratio_to_granian"] for r in here)
        ax.axvline(bare * section["settings"]["read_target"], color="#2ca02c", linestyle="--", label="read target")
        ax.set_xscale("log")
        ax.set_xlabel("requests/s (log; median, whiskers min-max)")
        ax.set_title(f"Over HTTP, {names.get(group, group)}")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(loc="lower right", fontsize=8)
    if inprocess:
        ax = axes[0][-1]
        labels = [r["label"] for r in inprocess][::-1]
        ax.barh(labels, [r["us_per_call"] for r in inprocess][::-1], color="#9ecae1")
        ax.axvline(section["inprocess"]["target_us"], color="#2ca02c", linestyle="--", label="read target")
        ax.set_xscale("log")
        ax.set_xlabel("µs per call, in-process (log)")
        ax.set_title("In-process, SQLite + memory")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"A real service: examples/items, {section['settings']['default_server']} server" + title_suffix)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(results: dict[str, Any]) -> None:
    for t in results["targets"]:
        value = "—" if t["measured"] is None else f"{t['measured']:.3f}"
        verdict = "" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"  {t['what']}: {value} (goal {t['goal']}) {verdict}", file=sys.stderr)
