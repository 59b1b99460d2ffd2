"""The suite still runs: every case once (``run.py --smoke``). No timing is asserted."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]
EXAMPLE = BENCH.parent / "examples" / "items"
sys.path.insert(0, str(BENCH))


def test_every_section_runs_and_writes_its_results(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["in-process"]["rows"][0]["label"] == "bare WSGI function"
    labels = {row["label"] for row in results["in-process"]["rows"]}
    assert {"pyservice, no plugins", "pyservice, 20 operation hooks", "Falcon", "Flask"} <= labels
    assert {"hooks", "payload", "operations"} <= set(results["scaling"])
    assert {row["label"] for row in results["client"]["rows"]} >= {"requests.Session", "pyservice Client"}
    assert results["memory"]["rows"]
    # Without wrk the http section says so in the notes instead of failing.
    assert results["http"]["rows"] or any("wrk is not installed" in note for note in results["meta"]["notes"])
    # Likewise without valgrind for the instruction counts.
    instructions = results["instructions"]["rows"]
    assert instructions or any("valgrind is not installed" in note for note in results["meta"]["notes"])
    if instructions:
        assert [row["label"] for row in instructions] == ["bare WSGI function", "pyservice, no plugins"]
        assert all(row["instructions_per_call"] > 0 for row in instructions)
    assert (tmp_path / "results.md").read_text().startswith("# Benchmark results (smoke run)")
    assert {path.name for path in tmp_path.glob("*.png")} >= {"inprocess.png", "scaling.png", "client.png"}
    check_versus_direct(results)
    check_service(results, tmp_path)


def check_versus_direct(results):
    """Each built-in plugin has a row beside its direct work, measured or skipped with the reason."""
    rows = results["in-process"]["versus_direct"]
    assert [row["plugin"] for row in rows] == ["logging", "auth", "throttle", "cache", "sqlalchemy", "idempotency"]
    for row in rows:
        assert "met" in row or "skipped" in row or "plugin_us" not in row, row
        if "met" in row:
            assert row["direct_us"] > 0
            assert row["allowance_us"] == 2 * row["direct_us"] + 1
    from suite import report

    markdown = report.markdown(results)
    assert "### Each plugin beside its direct work" in markdown
    assert "allowance µs" in markdown


def check_service(results, out):
    """The section "a real service": in-process, over HTTP on both backend sets, the breakdown, the plot."""
    section = results["service"]
    notes = results["meta"]["notes"]
    assert section["settings"]["default_server"] != "default", "pyservice serve --help names no default server"
    inprocess = {(row["group"], row["operation"]) for row in section["inprocess"]["rows"] if "operation" in row}
    expected = {"example", "logging", "auth", "throttle", "cache", "sqlalchemy", "all"}
    assert inprocess == {(group, "read") for group in expected} | {("example", "write")}
    assert section["inprocess"]["read_us"] > 0
    if not section["rows"]:
        assert any("wrk is not installed" in note for note in notes)
        return
    cases = {(row["backends"], row["case"], row["operation"]) for row in section["rows"]}
    embedded = {("embedded", "example", op) for op in ("read", "write")}
    embedded |= {("embedded", f"off:{off}", op) for off in expected - {"example"} for op in ("read", "write")}
    assert embedded <= cases
    assert ("embedded", "bare", "bare") in cases
    assert len([row for row in section["rows"] if row["case"] == "bare"]) == 2 * len(
        {row["backends"] for row in section["rows"]}
    )
    if ("shared", "example", "read") not in cases:
        assert any("Redis + PostgreSQL cases are skipped" in note for note in notes)
    else:
        assert ("shared", "example", "write") in cases
    for row in section["rows"]:
        assert row["requests"] > 0, row
        # Every answer a 200; a write may, rarely, outwait wrk's 5 s on a loaded machine's SQLite.
        assert row["errors"] <= row["requests"] / 100, row
    assert {(row["off"], row["operation"]) for row in section["breakdown"] if row["backends"] == "embedded"} == {
        (off, op) for off in expected - {"example"} for op in ("read", "write")
    }
    markdown = (out / "results.md").read_text()
    assert "## 7. A real service" in markdown
    assert "### What each plugin costs over HTTP" in markdown
    assert (out / "service.png").exists()


def _example_load_api():
    """The example's own load_api(), taken from its service.py without running the rest of the module."""
    tree = ast.parse((EXAMPLE / "service.py").read_text())
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "load_api")
    namespace = {"os": os, "pyservice": __import__("pyservice"), "HERE": EXAMPLE}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(EXAMPLE / "service.py"), "exec"), namespace)
    return namespace["load_api"]


@pytest.mark.parametrize("backends", ["embedded", "shared"])
def test_the_breakdowns_api_is_the_examples_with_nothing_off(backends, monkeypatch):
    from suite import items

    for key in [key for key in os.environ if key.startswith("ITEMS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ITEMS_API_KEY_PREFIX", "bench")
    monkeypatch.setenv("ITEMS_API_KEY_HASH", "0" * 64)
    monkeypatch.setenv("ITEMS_DATABASE_URL", "sqlite:///x.sqlite3")
    if backends == "shared":
        monkeypatch.setenv("ITEMS_BACKENDS", "shared")
        monkeypatch.setenv("ITEMS_REDIS_PREFIX", "bench-test")
    assert items.without(items.load_api(EXAMPLE / "api.json"), frozenset()) == _example_load_api()()
