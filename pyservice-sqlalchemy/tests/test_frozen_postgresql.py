"""A frozen PostgreSQL (SIGSTOP): every call answered 503 within its deadline, nothing lost, nothing left open.

The server is a private one (``pyservice.testing.PrivatePostgres``): the machine's own is
never frozen. A frozen server's kernel still acknowledges TCP, so neither
keepalives nor ``tcp_user_timeout`` notice it; the plugin's watchdog does.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from private_postgres import sessions, started_postgres, wait_until
from pyservice.testing import WSGITransport, client_for
from sa_testapp import make_app
from sqlalchemy import text

DEADLINE = 1.5
APPLICATION = "pssa-frozen"


@pytest.fixture(scope="module")
def server():
    postgres = started_postgres()
    yield postgres
    postgres.close()


@pytest.fixture
def service(server, prefix):
    built, models, _ = make_app(
        server.url,
        prefix,
        pool_size=2,
        max_overflow=1,
        connect_args={"application_name": APPLICATION},
    )
    models.base.metadata.create_all(built.plugins[0].engine)
    yield built
    server.thaw()
    built.plugins[0].dispose()
    models.base.metadata.drop_all(built.plugins[0].engine)
    built.plugins[0].dispose()


@pytest.fixture
def frozen(server):
    server.freeze()
    yield server
    server.thaw()


def timed_put(client, name):
    """``(seconds, outcome)`` of one put_item with the test's deadline: ``"ok"`` or the error's name."""
    started = time.monotonic()
    try:
        client.call("put_item", {"name": name}, timeout=DEADLINE)
        outcome = "ok"
    except client.exceptions.DatabaseUnavailable:
        outcome = "DatabaseUnavailable"
    return time.monotonic() - started, outcome


def concurrent_puts(client, names):
    results = {}

    def put(name):
        results[name] = timed_put(client, name)

    threads = [threading.Thread(target=put, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_every_call_to_a_frozen_database_answers_database_unavailable_within_its_deadline(service, frozen):
    client = client_for(service)
    # More calls at once than the pool holds: pooled connections, new ones and waits for one.
    results = concurrent_puts(client, [f"during-{number}" for number in range(6)])
    results["after"] = timed_put(client, "after")
    assert {outcome for _, outcome in results.values()} == {"DatabaseUnavailable"}
    assert max(seconds for seconds, _ in results.values()) < DEADLINE


def test_a_frozen_database_is_answered_in_the_protocols_503_shape(service, frozen):
    session = requests.Session()
    session.mount("http://", WSGITransport(service))
    path = service.api.endpoint.path_for(service.api.version, "put_item")
    answer = session.post(
        f"http://service{path}", json={"name": "x"}, headers={"Pyservice-Timeout": str(DEADLINE)}, timeout=30
    )
    assert answer.status_code == 503
    assert answer.json()["error"]["name"] == "DatabaseUnavailable"


def test_after_a_frozen_database_thaws_exactly_the_acknowledged_writes_are_there(service, server, prefix):
    client = client_for(service)
    client.put_item(name="before")  # the pool holds a connection when the server freezes
    server.freeze()
    during = concurrent_puts(client, [f"during-{number}" for number in range(4)])
    server.thaw()
    client.put_item(name="after")
    acknowledged = {"before", "after"} | {name for name, (_, outcome) in during.items() if outcome == "ok"}
    with service.plugins[0].sessionmaker() as session:
        assert set(session.scalars(text(f"SELECT name FROM {prefix}_item"))) == acknowledged


def test_after_a_frozen_database_thaws_no_session_of_ours_is_idle_in_transaction(service, server):
    client = client_for(service)
    client.put_item(name="before")
    server.freeze()
    concurrent_puts(client, [f"during-{number}" for number in range(4)])
    server.thaw()
    client.put_item(name="after")
    # The server ends the sessions whose sockets the watchdog shut as soon as it reads them again.
    assert wait_until(lambda: "idle in transaction" not in sessions(server, APPLICATION))
    assert sessions(server, APPLICATION)  # the query does see our sessions


def test_readiness_reports_a_frozen_database_within_the_probe_timeout(service, frozen):
    session = requests.Session()
    session.mount("http://", WSGITransport(service))
    started = time.monotonic()
    answer = session.get("http://service/health/ready", timeout=30)
    assert answer.status_code == 503
    assert time.monotonic() - started < 3.0  # health.timeout is 2 s by default
