"""Bad configuration fails at start-up, naming the key; given engines and sessionmakers work."""

from __future__ import annotations

import pyservice
import pytest
from pyservice import ApiError
from pyservice.testing import client_for
from pyservice_sqlalchemy import DEFAULT_URL, SQLAlchemy
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker


def service(config, operations=("op",), exceptions=(), **api):
    return pyservice.Service(
        available_plugins=[SQLAlchemy],
        operations=operations if isinstance(operations, dict) else list(operations),
        exceptions=list(exceptions),
        plugins={"sqlalchemy": config},
        **api,
    )


def test_an_error_kind_that_does_not_exist_is_refused():
    with pytest.raises(ApiError, match=r"errors.*'duplicate' is not one"):
        service({"errors": {"duplicate": "AlreadyExists"}}, exceptions=["AlreadyExists"])


def test_an_error_mapped_to_an_exception_the_api_does_not_whitelist_is_refused():
    with pytest.raises(ApiError, match=r"errors\.unique_violation.*'AlreadyExists' is not in the api's exceptions"):
        service({"errors": {"unique_violation": "AlreadyExists"}})


def test_url_and_engine_together_are_refused():
    engine = create_engine("sqlite:///unused.sqlite3")
    with pytest.raises(ApiError, match="expected one of url, engine and sessionmaker, got url and engine"):
        service({"url": "sqlite:///x.sqlite3", "engine": engine})


def test_an_in_memory_sqlite_database_is_refused():
    with pytest.raises(ApiError, match="in-memory"):
        service({"url": "sqlite://"})


def test_a_statement_timeout_on_sqlite_is_refused(tmp_path):
    with pytest.raises(ApiError, match=r"statement_timeout.*needs PostgreSQL, the url is sqlite"):
        service({"url": f"sqlite:///{tmp_path}/db", "statement_timeout": 1})


def test_read_only_on_a_database_without_support_is_refused():
    with pytest.raises(ApiError, match=r"read_only.*PostgreSQL or SQLite, the database is mysql"):
        service({"url": "mysql://u@localhost/db"}, operations={"op": {"read_only": True}})


def test_a_malformed_url_is_refused_without_showing_it():
    with pytest.raises(ApiError, match="expected a database URL") as caught:
        service({"url": "not a url with secret-password"})
    assert "secret-password" not in str(caught.value)


def test_an_attribute_that_shadows_the_context_is_refused():
    with pytest.raises(ApiError, match="attribute"):
        service({"attribute": "request"})


def test_an_engine_import_path_that_does_not_resolve_is_refused():
    with pytest.raises(ApiError, match=r"engine.*cannot import 'no_such_module_x:engine'"):
        service({"engine": "no_such_module_x:engine"})


def test_the_url_is_masked_in_the_chain_description(tmp_path):
    built = service({"url": f"sqlite:///{tmp_path}/secret.sqlite3"})
    assert "secret.sqlite3" not in built.describe_chain(verbose=True)


def test_the_default_database_is_a_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = service({})
    plugin = built.plugins[0]
    assert str(plugin.engine.url) == DEFAULT_URL
    plugin.dispose()


def test_an_engine_the_application_gives_is_used(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/given.sqlite3")
    built = service({"engine": engine})

    @built.operation("op")
    def op(request, response, context):
        response.file = context.session.get_bind().url.database

    assert client_for(built).op().file.endswith("given.sqlite3")
    engine.dispose()


def test_a_sessionmaker_the_application_gives_is_used_and_its_sessions_commit(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/given.sqlite3")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (v INTEGER)"))
    factory = sessionmaker(bind=engine, info={"marker": True})
    built = service({"sessionmaker": factory})

    @built.operation("op")
    def op(request, response, context):
        response.marker = context.session.info["marker"]
        context.session.execute(text("INSERT INTO t VALUES (1)"))

    assert client_for(built).op().marker is True
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM t")) == 1
    engine.dispose()


def test_a_client_with_the_plugin_opens_no_database(tmp_path):
    client = pyservice.Client(
        available_plugins=[SQLAlchemy], operations=["op"], plugins={"sqlalchemy": {"url": "sqlite://"}}
    )
    # An in-memory url would fail on a service; the client never looks at it.
    assert client.plugins[0].config["url"] == "sqlite://"


def test_an_operation_can_switch_the_plugin_off(tmp_path):
    built = service({"url": f"sqlite:///{tmp_path}/db"}, operations={"op": {"plugins": {"sqlalchemy": False}}})

    @built.operation("op")
    def op(request, response, context):
        response.has_session = hasattr(context, "session")

    assert client_for(built).op().has_session is False
