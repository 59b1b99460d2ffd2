"""Several worker processes over real HTTP, hammered by several client processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from pyservice.testing import LiveServer

HERE = Path(__file__).parent
PROCESSES, THREADS, CALLS = 4, 20, 2  # 160 calls per round, against a limit of 20
# Keys expire in Redis by real time, while the test moves a fake clock: a long period keeps a
# bucket from expiring in the middle of a round, however slow the machine is.
LIMIT, PERIOD = 20, 60.0
START = 1_000_000.0


def set_time(clock_file: Path, seconds: float) -> None:
    # Replace, never rewrite in place: a worker must not read a half-written file.
    temporary = clock_file.with_suffix(".tmp")
    temporary.write_text(repr(seconds))
    os.replace(temporary, clock_file)


def hammer(server: LiveServer) -> tuple[Counter[int], dict[str, Counter[int]]]:
    """Calls from PROCESSES processes of THREADS threads at once; their answers, by status and by worker."""
    url = f"{server.url}/api/v1/ping"
    processes = [
        subprocess.Popen(
            [sys.executable, str(HERE / "hammer.py"), url, str(THREADS), str(CALLS)], stdout=subprocess.PIPE
        )
        for _ in range(PROCESSES)
    ]
    statuses: Counter[int] = Counter()
    workers: dict[str, Counter[int]] = {}
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        result = json.loads(output)
        statuses.update({int(k): v for k, v in result["statuses"].items()})
        for pid, counts in result["workers"].items():
            workers.setdefault(pid, Counter()).update({int(k): v for k, v in counts.items()})
    assert sum(statuses.values()) == PROCESSES * THREADS * CALLS
    return statuses, workers


def start_server(live_server: Any, tmp_path: Path, config: dict[str, Any]) -> tuple[LiveServer, Path]:
    clock_file = tmp_path / "clock"
    set_time(clock_file, START)
    env = {"THROTTLE_CONFIG": json.dumps(config), "CLOCK_FILE": str(clock_file)}
    server = live_server("live_service:service", workers=2, cwd=HERE, env=env)
    return server, clock_file


def test_redis_backend_lets_exactly_the_limit_through_per_window_across_two_workers(
    live_server: Any, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    config = {"limit": f"{LIMIT}/{PERIOD:g}s", "backend": "redis", "redis_url": redis_url, "prefix": prefix}
    server, clock_file = start_server(live_server, tmp_path, config)
    try:
        first, workers = hammer(server)
        assert len(workers) == 2, "both worker processes must have answered"
        set_time(clock_file, START + PERIOD)  # across the window boundary
        second, _ = hammer(server)
        set_time(clock_file, START + PERIOD * 1.5)  # half a window later: half the limit
        third, _ = hammer(server)
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
    assert first == {200: LIMIT, 429: PROCESSES * THREADS * CALLS - LIMIT}
    assert second[200] == LIMIT
    assert third[200] == LIMIT // 2
    assert set(first) | set(second) | set(third) == {200, 429}


def test_memory_backend_is_refused_at_start_up_under_two_workers(live_server: Any, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"per_process: true"):
        start_server(live_server, tmp_path, {"limit": f"{LIMIT}/{PERIOD:g}s"})


def test_memory_backend_per_process_gives_each_worker_the_whole_limit(live_server: Any, tmp_path: Path) -> None:
    server, _ = start_server(live_server, tmp_path, {"limit": f"{LIMIT}/{PERIOD:g}s", "per_process": True})
    statuses, workers = hammer(server)
    assert len(workers) == 2, "both worker processes must have answered"
    for counts in workers.values():
        assert counts[200] == min(LIMIT, counts.total())
    assert statuses[200] == sum(min(LIMIT, counts.total()) for counts in workers.values())
