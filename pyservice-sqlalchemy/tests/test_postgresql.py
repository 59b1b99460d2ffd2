"""PostgreSQL going wrong: killed backends, an outage, slow statements."""

from __future__ import annotations

import pytest
from pyservice.testing import client_for
from sa_testapp import make_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from tcp_proxy import TcpProxy


@pytest.fixture
def pg_app(pg_url, prefix):
    """Factory: the test service on PostgreSQL, at ``url`` (the real server by default)."""
    built = []

    def build(url=None, **config):
        service, models, _ = make_app(
            url or pg_url, prefix, connect_args={"application_name": prefix, **config.pop("connect_args", {})}, **config
        )
        if not built:
            models.base.metadata.create_all(admin)
        built.append((service, models))
        return service, models

    admin = create_engine(pg_url, poolclass=NullPool)
    yield build
    for service, _ in built:
        service.plugins[0].dispose()
    if built:
        built[0][1].base.metadata.drop_all(admin)
    admin.dispose()


def terminate_backends(pg_url, application_name):
    with create_engine(pg_url, poolclass=NullPool).connect() as connection:
        query = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name")
        return len(connection.execute(query, {"name": application_name}).all())


def test_after_pg_terminate_backend_the_next_call_succeeds(pg_app, pg_url, prefix):
    service, _ = pg_app(pool_size=2)
    client = client_for(service)
    client.put_item(name="before")
    assert terminate_backends(pg_url, prefix) >= 1
    # Pre-ping finds the dead connection as it leaves the pool and replaces it.
    assert client.count_items().count == 1


def test_without_pre_ping_a_killed_backend_fails_one_call_with_503_then_recovers(pg_app, pg_url, prefix):
    service, _ = pg_app(pool_size=1, max_overflow=0, pool_pre_ping=False)
    client = client_for(service)
    client.put_item(name="before")
    assert terminate_backends(pg_url, prefix) == 1
    # put_item is not idempotent, so the client does not retry the 503.
    with pytest.raises(client.exceptions.DatabaseUnavailable):
        client.put_item(name="lost")
    client.put_item(name="after")
    assert client.count_items().count == 2
    assert service.plugins[0].engine.pool.checkedout() == 0


def test_an_outage_answers_503_and_calls_succeed_once_the_database_is_back(pg_app, pg_url):
    upstream = make_url(pg_url)
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    try:
        url = upstream.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        service, _ = pg_app(url, pool_size=2, pool_timeout=2.0, connect_args={"connect_timeout": 2})
        client = client_for(service)
        client.put_item(name="before")
        proxy.cut()
        for number in range(3):
            with pytest.raises(client.exceptions.DatabaseUnavailable):
                client.put_item(name=f"during-{number}")
        proxy.restore()
        client.put_item(name="after")
        assert client.count_items().count == 2
        assert service.plugins[0].engine.pool.checkedout() == 0
    finally:
        proxy.stop()


def test_a_statement_over_the_timeout_answers_database_timeout(pg_app):
    service, _ = pg_app(statement_timeout=0.2)
    client = client_for(service)
    with pytest.raises(client.exceptions.DatabaseTimeout):
        client.sleep(seconds=3)
    client.sleep(seconds=0)
    assert service.plugins[0].engine.pool.checkedout() == 0


def test_the_plugin_exceptions_are_503_and_whitelisted_on_both_sides(pg_app):
    service, _ = pg_app()
    client = client_for(service)
    for api in (service.api, client.api):
        assert api.exceptions["DatabaseUnavailable"] == 503
        assert api.exceptions["DatabaseTimeout"] == 503
