"""Sustained load with the plugins on, several workers, Redis and PostgreSQL.

Many concurrent clients for a bounded time (15 s; ``PYSERVICE_SOAK=1``: 5
minutes): zero unexpected errors, the throttle's count exact, every
acknowledged write in the database, worker memory flat from the first part
of the run to the last.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from pyservice.testing import LiveServer
from sqlalchemy import create_engine, text

from .test_bad_input import worker_rss_kib

APPS = Path(__file__).parent / "apps"
SECONDS = 300 if os.environ.get("PYSERVICE_SOAK") == "1" else 15
THREADS = 16
LIMIT = 50  # the app's "50/hour": no token comes back during the run, so the count is exact


@pytest.fixture
def database(postgresql_url):
    url = postgresql_url.replace("postgresql://", "postgresql+psycopg://", 1)
    table = f"load_items_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {table} (id varchar(64) PRIMARY KEY, name varchar(200) NOT NULL)"))
    yield url, table, engine
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {table}"))
    engine.dispose()


def test_sustained_load_loses_nothing_and_counts_exactly(redis_url, database):
    url, table, engine = database
    env = {"REDIS_URL": redis_url, "DATABASE_URL": url, "TABLE": table, "PREFIX": f"load-{uuid.uuid4().hex}"}
    tenant = uuid.uuid4().hex
    outcomes: Counter[str] = Counter()
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    with LiveServer("load_app:service", workers=3, cwd=APPS, env=env) as server:

        def call(session, operation, body, headers=None):
            return session.post(
                f"{server.url}/api/v1/{operation}",
                json=body,
                headers={"Content-Type": "application/json", **(headers or {})},
                timeout=10,
            )

        def client(number):
            session = requests.Session()
            written: list[str] = []
            while not stop.is_set():
                item = uuid.uuid4().hex
                answer = call(session, "put_item", {"id": item, "name": f"item {number}"})
                if answer.status_code == 200:
                    with lock:
                        acknowledged.add(answer.json()["id"])
                    written.append(item)
                    outcomes["put ok"] += 1
                else:
                    outcomes[f"put {answer.status_code} {answer.text[:80]}"] += 1
                if written:
                    got = call(session, "get_item", {"id": written[len(written) // 2]})
                    outcomes["get ok" if got.status_code == 200 else f"get {got.status_code} {got.text[:80]}"] += 1
                limited = call(session, "limited", {}, {"X-Tenant": tenant})
                if limited.status_code == 200:
                    outcomes["limited ok"] += 1
                elif limited.status_code == 429 and limited.json()["error"]["name"] == "RequestThrottled":
                    outcomes["limited throttled"] += 1
                else:
                    outcomes[f"limited {limited.status_code} {limited.text[:80]}"] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        time.sleep(min(5, SECONDS / 3))
        early = worker_rss_kib(server)
        time.sleep(SECONDS - min(5, SECONDS / 3))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        late = worker_rss_kib(server)
        output = server.output()

    calls = sum(outcomes.values())
    print(
        f"\nload: {SECONDS} s, {THREADS} client threads, 3 workers: {calls} calls ({calls / SECONDS:.0f}/s);"
        f" {dict(outcomes)}; worker RSS KiB early {sorted(early.values())} late {sorted(late.values())}"
    )
    expected = {"put ok", "get ok", "limited ok", "limited throttled"}
    assert set(outcomes) <= expected, {key: count for key, count in outcomes.items() if key not in expected}
    assert outcomes["limited ok"] == LIMIT
    assert outcomes["put ok"] > 100
    with engine.connect() as connection:
        stored = set(connection.execute(text(f"SELECT id FROM {table}")).scalars())
    assert acknowledged == stored
    assert set(late) == set(early), "a worker was replaced"
    for pid, size in late.items():
        # Flat: a few MiB of slack for allocator noise, nothing that grows with calls.
        assert size - early[pid] < 16 * 1024, f"worker {pid} grew from {early[pid]} KiB to {size} KiB"
    assert "Traceback" not in output
