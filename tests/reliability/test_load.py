"""Sustained load with every plugin on, several workers, Redis and PostgreSQL.

Many concurrent clients for a bounded time (15 s; ``PYSERVICE_SOAK=1``: 5
minutes): zero unexpected errors, the throttle's count exact, every
acknowledged write in the database, worker memory flat from the first part
of the run to the last.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pyservice
import pytest
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


def test_sustained_load_loses_nothing_and_counts_exactly(redis_url, database, monkeypatch):
    url, table, engine = database
    secret = secrets.token_hex(32)
    monkeypatch.setenv("LOAD_KEY_SECRET", secret)
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": url,
        "TABLE": table,
        "PREFIX": f"load-{uuid.uuid4().hex}",
        "LOAD_KEY_SECRET": secret,
    }
    tenant = uuid.uuid4().hex
    outcomes: Counter[str] = Counter()
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    with LiveServer("load_app:service", workers=3, cwd=APPS, env=env) as server:
        # Each call is signed afresh; the nonces that stop replays live in Redis, shared by the workers.
        shared_client = pyservice.Client(
            operations=["put_item", "get_item", "limited"],
            exceptions=["DoesNotExist", "RequestThrottled"],
            endpoint={"port": server.port},
            plugins={"auth": {"mode": "signed", "key_id": "load", "secret_env": "LOAD_KEY_SECRET"}},
        )

        def client(number):
            written: list[str] = []
            while not stop.is_set():
                item = uuid.uuid4().hex
                try:
                    acknowledged_id = shared_client.put_item(id=item, name=f"item {number}").id
                except Exception as exc:  # counted, and the test fails on it below
                    outcomes[f"put {exc!r}"[:120]] += 1
                else:
                    with lock:
                        acknowledged.add(acknowledged_id)
                    written.append(item)
                    outcomes["put ok"] += 1
                if written:
                    try:
                        shared_client.get_item(id=written[len(written) // 2])
                    except Exception as exc:  # counted, and the test fails on it below
                        outcomes[f"get {exc!r}"[:120]] += 1
                    else:
                        outcomes["get ok"] += 1
                try:
                    shared_client.call("limited", headers={"X-Tenant": tenant})
                except shared_client.exceptions.RequestThrottled:
                    outcomes["limited throttled"] += 1
                except Exception as exc:  # counted, and the test fails on it below
                    outcomes[f"limited {exc!r}"[:120]] += 1
                else:
                    outcomes["limited ok"] += 1

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
