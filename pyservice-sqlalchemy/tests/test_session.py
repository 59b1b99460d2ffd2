"""One session per call: commit, rollback, close, against SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import os

import pytest
from pyservice import ServiceError
from pyservice.testing import client_for
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.pool import NullPool


def names(service, models):
    with service.plugins[0].sessionmaker() as session:
        return set(session.scalars(select(models.Item.name)))


def test_a_successful_call_commits(app):
    service, models = app()
    created = client_for(service).put_item(name="teapot")
    assert created.id is not None
    assert names(service, models) == {"teapot"}


def test_a_raw_sql_write_is_committed(app):
    service, models = app()
    client_for(service).put_raw(name="raw")
    assert names(service, models) == {"raw"}


def test_a_whitelisted_exception_rolls_back(app):
    service, models = app()
    client = client_for(service)
    with pytest.raises(client.exceptions.Refused):
        client.put_item(name="refused", fail="whitelisted")
    assert names(service, models) == set()


def test_an_internal_error_rolls_back(app):
    service, models = app()
    with pytest.raises(ServiceError) as caught:
        client_for(service).put_item(name="broken", fail="internal")
    assert caught.value.status == 500
    assert names(service, models) == set()


def test_a_failure_to_encode_the_response_rolls_back(app):
    service, models = app()
    with pytest.raises(ServiceError) as caught:
        client_for(service).put_item(name="unencodable", fail="encode")
    assert caught.value.status == 500
    assert names(service, models) == set()


def test_a_failure_in_an_inner_request_hook_after_encoding_rolls_back(app):
    service, models = app()
    seen = []

    @service.plugin("request")
    def fails_after_encoding(context):
        context.process_request()
        seen.append(context.response_body)
        raise RuntimeError("a plugin inside ours failed")

    with pytest.raises(ServiceError):
        client_for(service).put_item(name="late")
    assert seen[0] is not None  # the answer had been encoded, and still nothing was committed
    assert names(service, models) == set()


def test_a_failed_commit_is_an_error_for_the_caller(app):
    service, models = app(errors={"foreign_key_violation": "Conflict"})
    client = client_for(service)
    # The foreign key is deferred: the insert passes and the commit fails.
    with pytest.raises(client.exceptions.Conflict, match="referenced row"):
        client.put_child(parent_id=12345, name="orphan")
    with service.plugins[0].sessionmaker() as session:
        assert session.scalars(select(models.Child)).all() == []


def test_a_failed_commit_without_a_mapping_is_an_internal_error(app):
    service, _ = app(errors={})
    with pytest.raises(ServiceError) as caught:
        client_for(service).put_child(parent_id=12345, name="orphan")
    assert caught.value.status == 500


def test_a_unique_violation_maps_to_the_named_exception(app):
    service, models = app()
    client = client_for(service)
    client.put_item(name="once")
    with pytest.raises(client.exceptions.AlreadyExists, match="already exists"):
        client.put_item(name="once")
    assert names(service, models) == {"once"}


def test_a_missing_row_maps_to_the_named_exception(app):
    service, _ = app()
    client = client_for(service)
    with pytest.raises(client.exceptions.DoesNotExist):
        client.get_item(id=424242)


def test_an_unmapped_missing_row_is_an_internal_error(app):
    service, _ = app(errors={})
    with pytest.raises(ServiceError) as caught:
        client_for(service).get_item(id=424242)
    assert caught.value.status == 500


def test_get_item_answers_the_columns(app):
    service, _ = app()
    client = client_for(service)
    created = client.put_item(name="shown")
    assert client.get_item(id=created.id).item == {"id": created.id, "name": "shown", "worker": os.getpid()}


def test_lazy_loads_during_encoding_run_in_the_open_session_before_commit(app):
    service, models = app()
    plugin = service.plugins[0]
    with plugin.sessionmaker() as session:
        zone = models.Zone(offset_minutes=90)
        parent = models.Parent(name="p", zone=zone)
        session.add(parent)
        session.commit()
        parent_id = parent.id
    loads = []
    commits = []

    @event.listens_for(plugin.sessionmaker, "do_orm_execute")
    def record_load(state):
        context = state.session.info.get("context")
        if context is not None and state.is_relationship_load:
            loads.append((bool(context.handler_returned), context.response_body is None))

    @event.listens_for(plugin.sessionmaker, "after_commit")
    def record_commit(session):
        context = session.info.get("context")
        if context is not None:
            commits.append(context.response_body is not None)

    answer = client_for(service).get_parent(id=parent_id)
    # The offset comes from parent.zone, loaded while orjson encoded the datetime.
    assert datetime.datetime.fromisoformat(answer.at).utcoffset() == datetime.timedelta(minutes=90)
    assert loads == [(True, True)]  # after the handler returned, before the body existed
    assert commits == [True]  # and the commit came after the body existed


def test_a_read_only_operation_runs_read_only(app):
    service, _ = app()
    client = client_for(service)
    assert client.read_only_setting().read_only is True
    assert client.read_write_setting().read_only is False


def test_a_write_in_a_read_only_operation_is_refused(app):
    service, models = app()
    with pytest.raises(ServiceError) as caught:
        client_for(service).write_in_read_only(name="sneaky")
    assert caught.value.status == 500
    assert names(service, models) == set()


def test_a_connection_used_read_only_writes_again_afterwards(app):
    # One connection in the pool: the read-only call and the write share it.
    service, models = app(pool_size=1, max_overflow=0)
    client = client_for(service)
    assert client.count_items().count == 0
    client.put_item(name="after")
    assert client.read_write_setting().read_only is False
    assert names(service, models) == {"after"}


def test_the_session_attribute_is_configurable(app):
    service, _ = app(attribute="db")
    seen = []

    @service.plugin("operation")
    def record(request, response, context):
        seen.append((type(context.db).__name__, hasattr(context, "session")))
        context.process_request()

    with pytest.raises(ServiceError):
        client_for(service).count_items()  # the handler reads context.session, absent
    assert seen == [("Session", False)]


def test_no_connection_is_left_checked_out_or_idle_in_transaction_after_many_calls(app, prefix):
    is_postgresql = app.url.startswith("postgresql")
    # The application name finds this test's server sessions among everyone's.
    connect_args = {"application_name": prefix} if is_postgresql else {}
    service, models = app(pool_size=2, max_overflow=2, connect_args=connect_args)
    client = client_for(service)
    acknowledged = set()
    for number in range(2400):
        kind = number % 6
        try:
            if kind == 0:
                client.put_item(name=f"item-{number}", fail="internal")
            elif kind == 1:
                client.put_item(name=f"item-{number}", fail="encode")
            elif kind == 2:
                client.get_item(id=-number)
            elif kind == 3:
                client.write_in_read_only(name=f"item-{number}")
            else:
                client.put_item(name=f"item-{number}")
                acknowledged.add(f"item-{number}")
        except (ServiceError, client.exceptions.DoesNotExist):
            pass
    engine = service.plugins[0].engine
    assert engine.pool.checkedout() == 0
    assert names(service, models) == acknowledged
    if is_postgresql:
        states = server_states(app.url, prefix)
        assert states  # the pool's connections are there, so the query does find them
        assert set(states) == {"idle"}


def server_states(url, application_name):
    with create_engine(url, poolclass=NullPool).connect() as connection:
        query = text("SELECT state FROM pg_stat_activity WHERE application_name = :name")
        return list(connection.scalars(query, {"name": application_name}))


def test_stopping_the_service_closes_its_pooled_connections(app):
    service, _ = app()
    client_for(service).nothing()  # the first call starts the plugins in this process
    pool = service.plugins[0].engine.pool
    with service.plugins[0].sessionmaker() as session:
        session.connection()
    assert pool.checkedin() == 1
    service.stop()
    assert pool.checkedin() == 0
