"""The items example: the README's service and client, under the production server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "items"


def test_the_items_example_runs_end_to_end():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "run.py")], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("items service under gunicorn, 2 workers")
    assert lines[1].startswith("put_item  -> id ")
    assert lines[2] == "get_item  -> {'name': 'teapot', 'colour': 'blue'}"
    assert lines[3] == "get_item  -> raised DoesNotExist: No item with id no-such-id"
    assert lines[4] == "put_item  -> raised ItemRequired: Need an item to put"
    assert lines[-1] == "server stopped"
