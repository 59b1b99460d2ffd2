from __future__ import annotations

import io
import json
import logging

import pyservice
import structlog
from structlog.testing import LogCapture

from .conftest import PLUGINS, make_api, make_service, wsgi_post

CARD = "4111 1111 1111 1111"


def test_default_setup_leaves_root_logging_and_structlog_alone():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    make_service(make_api())
    assert root.handlers == handlers
    assert root.level == level
    assert structlog.get_config() == config


def test_output_stdlib_hands_rendered_lines_to_the_applications_handlers(lines):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        service = make_service(make_api({"logging": {"output": "stdlib", "logger_name": "app.access"}}))
        wsgi_post(service, "/api/v1/get_item", b'{"id": "7"}')
    finally:
        logging.getLogger().removeHandler(handler)
    calls = [json.loads(line) for line in stream.getvalue().splitlines() if '"call"' in line]
    assert [(event["logger"], event["outcome"]) for event in calls] == [("app.access", "ok")]
    assert lines.read() == ""


def test_configure_stdlib_renders_library_records_once_and_redacted(lines):
    make_service(make_api({"logging": {"configure_stdlib": True}}))
    logging.getLogger("urllib3.connectionpool").warning("Starting new HTTP connection (%d): %s", 1, "example.org")
    logging.getLogger("sqlalchemy.engine").info("INSERT card %s", CARD)
    events = lines.events()
    assert [(event["logger"], event["level"]) for event in events] == [
        ("urllib3.connectionpool", "warning"),
        ("sqlalchemy.engine", "info"),
    ]
    assert events[0]["event"] == "Starting new HTTP connection (1): example.org"
    assert events[1]["event"] == "INSERT card [REDACTED]"
    assert CARD not in lines.text


def test_configure_stdlib_renders_the_core_traceback_once(lines):
    service = make_service(make_api({"logging": {"configure_stdlib": True}}))
    wsgi_post(service, "/api/v1/get_item", b'{"id": "boom"}')
    assert lines.read().count("ZeroDivisionError: boom") == 1
    [event] = lines.calls("service")
    assert "ZeroDivisionError: boom" in event["exception"]


def test_configure_stdlib_takes_over_server_loggers_with_their_own_handlers(lines):
    # gunicorn gives its loggers their own handlers and stops propagation after
    # the service is imported; the records must still be rendered by us, once.
    make_service(make_api({"logging": {"configure_stdlib": True}}))
    server = logging.getLogger("gunicorn.error")
    own_stream = io.StringIO()
    own = logging.StreamHandler(own_stream)
    server.addHandler(own)
    propagate = server.propagate
    server.propagate = False
    try:
        server.info("Booting worker with pid: %s", 42)
    finally:
        server.removeHandler(own)
        server.propagate = propagate
    assert own_stream.getvalue() == ""
    [event] = lines.events()
    assert (event["logger"], event["event"]) == ("gunicorn.error", "Booting worker with pid: 42")


def test_application_structlog_configuration_coexists(lines):
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        cache_logger_on_first_use=False,
    )
    config = structlog.get_config()
    service = pyservice.Service(available_plugins=PLUGINS, **make_api())

    @service.operation("get_item")
    def get_item(request, response, context):
        structlog.get_logger().info("app event", item=request.id)

    wsgi_post(service, "/api/v1/get_item", b'{"id": "7"}', {"X-Request-ID": "app-1"})
    assert structlog.get_config() == config
    # The application's own events go through its pipeline, with the call's request id...
    assert capture.entries == [{"event": "app event", "item": "7", "request_id": "app-1", "log_level": "info"}]
    # ...and the plugin's through its own, untouched by the application's.
    [call] = lines.calls("service")
    assert call["request_id"] == "app-1"
