from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from pyservice.testing import LiveServer

HERE = Path(__file__).parent
PROCESSES = 4
THREADS = 50


def test_four_processes_of_fifty_threads_run_the_handler_once_across_two_workers(
    redis_url: str, live_server: Callable[..., LiveServer]
) -> None:
    prefix = f"test-cache-{uuid.uuid4().hex}"
    counter = f"{prefix}-runs"
    server = live_server(
        "stampede_service:service",
        workers=2,
        cwd=HERE,
        env={"CACHE_REDIS_URL": redis_url, "CACHE_PREFIX": prefix, "CACHE_COUNTER": counter},
    )
    store = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        start_at = time.time() + 2.0  # every process has imported and built its threads by then
        processes = [
            subprocess.Popen(
                [sys.executable, str(HERE / "stampede_clients.py"), str(server.port), str(THREADS), str(start_at)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(PROCESSES)
        ]
        answers = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()
            answers.extend(json.loads(line) for line in out.decode().splitlines())
        assert len(answers) == PROCESSES * THREADS
        assert all("error" not in answer for answer in answers), [a for a in answers if "error" in a][:3]
        assert {answer["id"] for answer in answers} == {"cold"}
        assert len({answer["pid"] for answer in answers}) == 1  # one worker computed the one answer
        assert int(store.get(counter) or 0) == 1
    finally:
        keys = [*store.scan_iter(match=f"{prefix}*"), *store.scan_iter(match=f"lock:{prefix}*")]
        if keys:
            store.delete(*keys)
        store.close()
