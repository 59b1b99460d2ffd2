"""The items example: the README's main job, every plugin on, under the production server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import requests

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


def story(lines):
    # The lines the client printed, between the start-up lines and the server's log.
    end = lines.index("server stopped; what its logging plugin wrote:")
    return lines[:end], lines[end + 1 :]


def check_story(lines):
    assert lines[0] == "starting the items service under pyservice serve (its own server, 2 workers)..."
    assert re.search(r", at http://127\.0\.0\.1:\d+ \(ready in [\d.]+ s\)$", lines[1])
    told, logged_lines = story(lines)
    # Waits for the throttle (a rerun on Redis) are said as they happen; the story is the same.
    waits = [line for line in told if line.startswith("put_item  .. 429 RequestThrottled")]
    told = [line for line in told[2:] if line not in waits]
    assert told[0].startswith("put_item  -> id ")
    assert re.fullmatch(r"get_item  -> \{'name': 'teapot', 'colour': 'blue'\}  \(cache miss, [\d.]+ ms\)", told[1])
    assert re.fullmatch(r"get_item  -> again: cache (hit|miss), [\d.]+ ms", told[2])
    rest = told[3:]
    if told[2].startswith("get_item  -> again: cache miss"):
        assert "each of the 2 workers has a memory cache of its own" in rest.pop(0)
    assert rest[0] == "get_item  -> raised DoesNotExist: no row matches"
    assert rest[1] == "put_item  -> raised ItemRequired: Need an item with a name to put"
    assert rest[2] == "get_item  -> without the API key, raised Unauthenticated: authentication failed"
    assert re.fullmatch(r"put_item  -> raised RequestThrottled after \d+ more puts: the limit is 5 a minute", rest[3])
    logged = [line.split() for line in logged_lines if line.startswith("  ")]
    assert ["get_item", "ok", "200"] in [entry[:3] for entry in logged]
    assert ["get_item", "DoesNotExist", "404"] in [entry[:3] for entry in logged]
    assert ["put_item", "RequestThrottled", "429"] in [entry[:3] for entry in logged]
    assert ["get_item", "Unauthenticated", "401"] in [entry[:3] for entry in logged]
    return told, waits, logged


def check_cache_told_as_logged(told, logged):
    # What the client printed for the cache is what the service's access log says for those calls.
    gets = [entry for entry in logged if entry[:3] == ["get_item", "ok", "200"]]
    assert gets[0][-2:] == ["cache", "miss"]
    said = "hit" if "cache hit" in told[2] else "miss"
    assert gets[1][-2:] == ["cache", said]


def test_the_items_example_runs_on_the_embedded_backends():
    lines = run()
    assert lines[1].startswith("items service under pyservice serve (its own server, 2 workers), SQLite and memory")
    told, waits, logged = check_story(lines)
    assert waits == []
    check_cache_told_as_logged(told, logged)
    assert "what to try next:" in lines
    assert any(line.strip().startswith("ITEMS_BACKENDS=shared") for line in lines)


def test_one_switch_moves_the_items_example_to_redis_and_postgresql(redis_url, postgresql_url):
    # A fresh prefix: the throttle's count must not carry over from an earlier run.
    prefix = f"items-test-{uuid.uuid4().hex}"
    lines = run({"ITEMS_BACKENDS": "shared", "ITEMS_REDIS_URL": redis_url, "ITEMS_REDIS_PREFIX": prefix})
    assert lines[1].startswith("items service under pyservice serve (its own server, 2 workers), Redis and PostgreSQL")
    told, waits, logged = check_story(lines)
    assert waits == []
    check_cache_told_as_logged(told, logged)
    # Shared by both workers, the throttle's count is exact: 1 put, 1 refused put, then 3 more.
    assert "after 3 more puts" in told[-1]


def test_the_shared_example_runs_again_at_once_waiting_out_its_own_429(redis_url, postgresql_url):
    # The second run finds the first run's throttle count in Redis, and waits Retry-After instead of failing.
    env = {
        "ITEMS_BACKENDS": "shared",
        "ITEMS_REDIS_URL": redis_url,
        "ITEMS_REDIS_PREFIX": f"items-test-{uuid.uuid4().hex}",
    }
    run(env)
    lines = run(env)
    _, waits, logged = check_story(lines)
    assert waits
    assert all(re.search(r"waiting Retry-After \(\d+ s\)$", line) for line in waits)
    assert ["put_item", "ok", "200"] in [entry[:3] for entry in logged]


def test_keep_leaves_the_service_up_with_its_explorer_until_ctrl_c():
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "run.py"), "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = None
        for line in process.stdout:
            found = re.search(r"API explorer +(http://\S+)/docs", line)
            if found:
                url = found.group(1)
                break
        assert url is not None
        page = requests.get(f"{url}/docs", timeout=10)
        assert page.status_code == 200
        assert "swagger-ui-bundle.js" in page.text
        document = requests.get(f"{url}/openapi.json", timeout=10).json()
        assert document["servers"] == [{"url": url}]
        assert {"/api/v1/put_item", "/api/v1/get_item"} <= set(document["paths"])
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
        assert "server stopped; what its logging plugin wrote:" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
