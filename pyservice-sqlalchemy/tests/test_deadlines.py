"""PostgreSQL work bounded by the call's deadline: statement and lock timeouts, connect options."""

from __future__ import annotations

import time

import pytest
import requests
from pyservice.testing import WSGITransport, client_for
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool


@pytest.fixture
def pg_app(pg_url, prefix):
    """Factory: the test service on the machine's PostgreSQL, on fresh tables dropped afterwards."""
    from sa_testapp import make_app

    built = []

    def build(**config):
        service, models, _ = make_app(None if "engine" in config else pg_url, prefix, **config)
        if not built:
            models.base.metadata.create_all(admin)
        built.append((service, models))
        return service

    admin = create_engine(pg_url, poolclass=NullPool)
    yield build
    for service, _ in built:
        service.plugins[0].dispose()
    if built:
        built[0][1].base.metadata.drop_all(admin)
    admin.dispose()


def post_without_deadline(service, operation):
    session = requests.Session()
    session.mount("http://", WSGITransport(service))
    path = service.api.endpoint.path_for(service.api.version, operation)
    answer = session.post(f"http://service{path}", json={}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_calls_statement_and_lock_timeouts_come_from_its_time_left(pg_app):
    answer = client_for(pg_app()).call("timeouts", timeout=3)
    for setting in (answer.statement_timeout, answer.lock_timeout):
        assert setting.endswith("ms")
        assert 2000 < int(setting[:-2]) < 3000


def test_without_a_deadline_the_plugins_timeout_bounds_the_work(pg_app):
    answer = post_without_deadline(pg_app(timeout=4), "timeouts")
    assert 3000 < int(answer["statement_timeout"][:-2]) < 4000


def test_without_a_deadline_or_a_timeout_the_operations_read_timeout_bounds_the_work(pg_app):
    answer = post_without_deadline(pg_app(), "timeouts")  # the api's default client timeout: 10 s
    assert 9000 < int(answer["statement_timeout"][:-2]) < 10000


def test_the_timeouts_travel_with_the_begin_not_as_a_statement_of_their_own(pg_app):
    service = pg_app()
    statements = []
    event.listen(service.plugins[0].engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    client_for(service).call("timeouts", timeout=3)
    assert statements  # the handler's own query is seen
    assert not [statement for statement in statements if "SET LOCAL" in statement]


def test_the_begin_keeps_the_engines_isolation_level(pg_app, pg_url):
    engine = create_engine(pg_url, isolation_level="SERIALIZABLE")
    try:
        assert client_for(pg_app(engine=engine)).isolation().isolation == "serializable"
    finally:
        engine.dispose()


def test_a_configured_statement_timeout_shorter_than_the_time_left_is_kept(pg_app):
    answer = client_for(pg_app(statement_timeout=0.5)).call("timeouts", timeout=3)
    assert answer.statement_timeout == "500ms"


def test_a_statement_longer_than_the_time_left_answers_database_timeout_before_the_deadline(pg_app):
    client = client_for(pg_app())
    started = time.monotonic()
    with pytest.raises(client.exceptions.DatabaseTimeout):
        client.call("sleep", {"seconds": 5}, timeout=1)
    assert time.monotonic() - started < 1


def test_a_lock_wait_longer_than_the_time_left_answers_database_timeout(pg_app, pg_url, prefix):
    service = pg_app()
    client = client_for(service)
    holder = create_engine(pg_url, poolclass=NullPool)
    try:
        with holder.connect() as connection:
            # An uncommitted row with the same unique name: our insert waits on its lock.
            connection.execute(text(f"INSERT INTO {prefix}_item (name) VALUES ('locked')"))
            with pytest.raises(client.exceptions.DatabaseTimeout):
                client.call("put_item", {"name": "locked"}, timeout=1)
            connection.rollback()
    finally:
        holder.dispose()
    assert client.put_item(name="locked").id


def test_the_connection_stays_in_the_pool_after_a_statement_timeout(pg_app):
    service = pg_app(pool_size=1, max_overflow=0)
    client = client_for(service)
    backend = client.whoami().backend
    with pytest.raises(client.exceptions.DatabaseTimeout):
        client.call("sleep", {"seconds": 5}, timeout=1)
    assert client.whoami().backend == backend


def connection_parameters(service):
    connection = service.plugins[0].engine.raw_connection()
    try:
        return connection.driver_connection.info.get_parameters()
    finally:
        connection.close()


def test_postgresql_connections_get_keepalives_a_user_timeout_and_a_connect_timeout(pg_app):
    parameters = connection_parameters(pg_app())
    assert parameters["keepalives"] == "1"
    assert parameters["keepalives_idle"] == "10"
    assert parameters["tcp_user_timeout"] == "25000"
    assert parameters["connect_timeout"] == "5"


def test_connect_args_override_the_connection_defaults(pg_app):
    parameters = connection_parameters(pg_app(connect_args={"keepalives_idle": 60, "connect_timeout": 3}))
    assert parameters["keepalives_idle"] == "60"
    assert parameters["connect_timeout"] == "3"
