"""The items example: the README's main job, every plugin on, under the production server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "items"


def run(env=None):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "run.py")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def check_story(lines):
    assert lines[1].startswith("put_item  -> id ")
    assert lines[2] == "get_item  -> {'name': 'teapot', 'colour': 'blue'}"
    assert lines[3].startswith("get_item  -> again, from the cache")
    assert lines[4] == "get_item  -> raised DoesNotExist: no row matches"
    assert lines[5] == "put_item  -> raised ItemRequired: Need an item with a name to put"
    assert lines[6] == "get_item  -> without the API key, raised Unauthenticated: authentication failed"
    assert re.fullmatch(r"put_item  -> raised RequestThrottled after \d+ more puts: the limit is 5 a minute", lines[7])
    assert lines[8] == "server stopped; what its logging plugin wrote:"
    logged = [line.split() for line in lines[9:]]
    assert ["get_item", "ok", "200"] in [entry[:3] for entry in logged]
    assert ["get_item", "DoesNotExist", "404"] in [entry[:3] for entry in logged]
    assert ["put_item", "RequestThrottled", "429"] in [entry[:3] for entry in logged]
    assert ["get_item", "Unauthenticated", "401"] in [entry[:3] for entry in logged]


def test_the_items_example_runs_on_the_embedded_backends():
    lines = run()
    assert lines[0].startswith("items service under pyservice serve (its own server, 2 workers), SQLite and memory")
    check_story(lines)


def test_one_switch_moves_the_items_example_to_redis_and_postgresql(redis_url, postgresql_url):
    # A fresh prefix: the throttle's count must not carry over from an earlier run.
    prefix = f"items-test-{uuid.uuid4().hex}"
    lines = run({"ITEMS_BACKENDS": "shared", "ITEMS_REDIS_URL": redis_url, "ITEMS_REDIS_PREFIX": prefix})
    assert lines[0].startswith("items service under pyservice serve (its own server, 2 workers), Redis and PostgreSQL")
    check_story(lines)
    # Shared by both workers, the throttle's count is exact: 1 put, 1 refused put, then 3 more.
    assert "after 3 more puts" in lines[7]
