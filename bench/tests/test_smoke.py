"""The suite still runs: every case once (``run.py --smoke``). No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def test_every_section_runs_and_writes_its_results(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
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
