"""Concurrent writers: every acknowledged write is there, no other one is."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyservice
from pyservice import ClientError
from pyservice.testing import LiveServer, client_for
from sa_testapp import make_app
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

HERE = Path(__file__).parent


def write_concurrently(client_factory, prefix, *, threads, calls):
    """Each thread writes ``calls`` items; every third call fails after its insert."""
    acknowledged = set()
    attempted = set()
    lock = threading.Lock()

    def writer(thread):
        client = client_factory()
        for number in range(calls):
            name = f"{prefix}-{thread}-{number}"
            with lock:
                attempted.add(name)
            try:
                client.put_item(name=name, fail="internal" if number % 3 == 0 else None)
            except ClientError:
                continue
            with lock:
                acknowledged.add(name)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(writer, range(threads)))
    return acknowledged, attempted


def test_concurrent_threads_leave_exactly_the_acknowledged_writes(app, prefix):
    service, models = app(pool_size=3, max_overflow=2)
    acknowledged, attempted = write_concurrently(lambda: client_for(service), prefix, threads=6, calls=30)
    with service.plugins[0].sessionmaker() as session:
        present = set(session.scalars(select(models.Item.name)))
    assert len(attempted) == 180
    assert acknowledged  # most calls succeed; SQLite may refuse a few when busy
    assert present == acknowledged
    assert service.plugins[0].engine.pool.checkedout() == 0


def test_two_worker_processes_leave_exactly_the_acknowledged_writes(pg_url, prefix):
    _, models, api = make_app(pg_url, prefix)
    admin = create_engine(pg_url, poolclass=NullPool)
    models.base.metadata.create_all(admin)
    try:
        env = {"PSSA_URL": pg_url, "PSSA_PREFIX": prefix}
        with LiveServer("live_app:service", workers=2, cwd=HERE, env=env) as server:
            client_api = {**api, "endpoint": {"port": server.port}}

            def make_client():
                return pyservice.Client(**client_api)

            # First calls first: a connection inherited from the master would show here.
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda _: make_client().whoami(), range(24)))
            acknowledged, _ = write_concurrently(make_client, prefix, threads=6, calls=30)
        backends = {}
        for answer in answers:
            backends.setdefault(answer.backend, set()).add(answer.pid)
        with admin.connect() as connection:
            rows = connection.execute(select(models.Item.name, models.Item.worker)).all()
        assert len(acknowledged) == 120
        assert {name for name, _ in rows} == acknowledged
        assert len({worker for _, worker in rows}) == 2  # both workers wrote
        # No database connection is shared by two processes.
        assert all(len(pids) == 1 for pids in backends.values()), backends
    finally:
        models.base.metadata.drop_all(admin)
        admin.dispose()
