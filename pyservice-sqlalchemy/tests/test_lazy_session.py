"""The session opens on the first read of context.session: a call that never reads it costs the database nothing."""

from __future__ import annotations

import pytest
from pyservice import ServiceContext
from pyservice.testing import client_for
from sqlalchemy import event
from sqlalchemy.orm import Session


def checkouts(service):
    seen = []
    event.listen(service.plugins[0].engine, "checkout", lambda *args: seen.append(args))
    return seen


def test_an_operation_that_never_reads_the_session_checks_out_no_connection(app):
    service, _ = app()
    seen = checkouts(service)
    assert client_for(service).nothing().done is True
    assert seen == []


def test_an_operation_that_never_reads_the_session_begins_no_transaction(app):
    service, _ = app()
    begun = []
    event.listen(service.plugins[0].sessionmaker, "after_begin", lambda *args: begun.append(args))
    client_for(service).nothing()
    assert begun == []


def test_a_hook_that_answers_without_the_handler_reaches_no_database(app):
    service, _ = app()
    seen = checkouts(service)

    @service.plugin("operation", operations=["count_items"])
    def answer_from_elsewhere(request, response, context):
        response.count = -1  # as a cache hit does: the handler never runs

    assert client_for(service).count_items().count == -1
    assert seen == []


def test_an_operation_that_reads_the_session_checks_out_one_connection(app):
    service, _ = app()
    seen = checkouts(service)
    client_for(service).count_items()
    assert len(seen) == 1


def test_each_read_of_the_session_in_a_call_gives_the_same_session(app):
    service, _ = app()
    seen = []

    @service.plugin("operation", operations=["nothing"])
    def read_twice(request, response, context):
        seen.append((context.session, context.session))
        context.process_request()

    client_for(service).nothing()
    [(first, second)] = seen
    assert first is second
    assert isinstance(first, Session)


def test_a_context_outside_the_plugins_hook_has_no_session(app):
    app()
    with pytest.raises(AttributeError, match="only inside the sqlalchemy plugin's hook"):
        ServiceContext().session  # noqa: B018 - the read is the test
