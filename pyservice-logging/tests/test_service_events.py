from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pyservice
import pytest
import structlog

from .conftest import PLUGINS, client, make_api, make_service, wsgi_post

PATH = "/api/v1/get_item"


def test_success_event_has_the_call_fields(lines):
    service = make_service(make_api())
    status, headers, body = wsgi_post(service, PATH, b'{"id": "7"}')
    assert status == 200
    [event] = lines.calls("service")
    assert event["level"] == "info"
    assert event["service"] == "items"
    assert event["version"] == "v1"
    assert event["operation"] == "get_item"
    assert event["outcome"] == "ok"
    assert event["status"] == 200
    assert event["request_size"] == len(b'{"id": "7"}')
    assert event["response_size"] == len(body)
    assert event["remote_addr"] == "10.0.0.7"
    assert isinstance(event["duration_ms"], float)
    assert event["duration_ms"] >= 0
    assert event["request_id"] == headers["X-Request-ID"]
    assert "error" not in event


def test_whitelisted_exception_event_names_the_exception(lines):
    service = make_service(make_api())
    status, _, _ = wsgi_post(service, PATH, b'{"id": "missing"}')
    assert status == 404
    [event] = lines.calls("service")
    assert (event["outcome"], event["error"], event["status"], event["level"]) == (
        "exception",
        "DoesNotExist",
        404,
        "info",
    )
    assert "exception" not in event


def test_internal_error_event_carries_the_traceback(lines):
    service = make_service(make_api())
    status, _, _ = wsgi_post(service, PATH, b'{"id": "boom"}')
    assert status == 500
    [event] = lines.calls("service")
    assert (event["outcome"], event["error"], event["status"], event["level"]) == (
        "internal_error",
        "ZeroDivisionError",
        500,
        "error",
    )
    assert "Traceback" in event["exception"]
    assert "ZeroDivisionError: boom" in event["exception"]


def test_internal_error_traceback_appears_once(lines, caplog):
    service = make_service(make_api())
    with caplog.at_level(logging.ERROR, logger="pyservice"):
        wsgi_post(service, PATH, b'{"id": "boom"}')
    # The core logs it twice (our hook and the WSGI app ask describe_error); both are dropped.
    assert [record for record in caplog.records if record.name == "pyservice"] == []
    assert lines.read().count("ZeroDivisionError: boom") == 1


def test_core_logs_the_traceback_when_the_plugin_level_hides_errors(lines, caplog):
    service = make_service(make_api({"logging": {"level": "critical"}}))
    with caplog.at_level(logging.ERROR, logger="pyservice"):
        wsgi_post(service, PATH, b'{"id": "boom"}')
    assert lines.calls("service") == []
    assert any(record.name == "pyservice" and record.exc_info for record in caplog.records)


def test_malformed_json_is_logged_as_rejected(lines):
    service = make_service(make_api())
    status, _, _ = wsgi_post(service, PATH, b"{not json")
    assert status == 400
    [event] = lines.calls("service")
    assert (event["outcome"], event["error"], event["status"], event["level"]) == (
        "rejected",
        "MalformedJSON",
        400,
        "warning",
    )
    assert event["request_size"] == len(b"{not json")


def test_body_too_large_is_rejected_with_the_declared_size(lines):
    service = make_service(make_api(max_body_size=16))
    status, _, _ = wsgi_post(service, PATH, b'{"id": "' + b"x" * 100 + b'"}')
    assert status == 413
    [event] = lines.calls("service")
    assert (event["outcome"], event["error"]) == ("rejected", "BodyTooLarge")
    assert event["request_size"] == 110


def test_handler_events_carry_the_request_id(lines):
    service = make_service(make_api())
    _, headers, _ = wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": "req-123"})
    [own] = [event for event in lines.events() if event["event"] == "looking up"]
    assert own["request_id"] == "req-123"
    assert own["item_id"] == "7"
    assert headers["X-Request-ID"] == "req-123"


@pytest.mark.parametrize(
    "given",
    ["", "has space", "new\nline", "x" * 129, "-leading-dash", 'quote"d', "ünïcode"],
)
def test_malformed_request_id_is_replaced(lines, given):
    service = make_service(make_api())
    environ_safe = given.encode("latin-1", "replace").decode("latin-1")
    _, headers, _ = wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": environ_safe})
    [event] = lines.calls("service")
    assert event["request_id"] != environ_safe
    assert len(event["request_id"]) == 32
    assert headers["X-Request-ID"] == event["request_id"]


def test_request_id_of_128_safe_characters_is_kept(lines):
    service = make_service(make_api())
    given = "a" + "Z9._:@+=/~-" * 11 + "abcdefg"[: 128 - 1 - 11 * 11]
    assert len(given) == 128
    wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": given})
    [event] = lines.calls("service")
    assert event["request_id"] == given


def test_traceparent_continues_the_trace(lines):
    service = make_service(make_api())
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    wsgi_post(service, PATH, b'{"id": "7"}', {"traceparent": f"00-{trace_id}-{parent}-01"})
    [event] = lines.calls("service")
    assert event["trace_id"] == trace_id
    assert event["parent_id"] == parent
    assert event["request_id"] == trace_id
    assert event["span_id"] not in (parent, "0" * 16)


def test_request_id_header_wins_over_traceparent(lines):
    service = make_service(make_api())
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    wsgi_post(
        service, PATH, b'{"id": "7"}', {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "X-Request-ID": "abc"}
    )
    [event] = lines.calls("service")
    assert (event["request_id"], event["trace_id"]) == ("abc", trace_id)


def test_invalid_traceparent_starts_a_new_trace(lines):
    service = make_service(make_api())
    wsgi_post(service, PATH, b'{"id": "7"}', {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    [event] = lines.calls("service")
    assert event["trace_id"] != "0" * 32
    assert event["parent_id"] is None


def test_sample_rate_zero_drops_successes_but_not_failures(lines):
    service = make_service(make_api({"logging": {"sample_rate": 0.0}}))
    wsgi_post(service, PATH, b'{"id": "7"}')
    wsgi_post(service, PATH, b'{"id": "missing"}')
    wsgi_post(service, PATH, b'{"id": "boom"}')
    assert [event["outcome"] for event in lines.calls("service")] == ["exception", "internal_error"]


def test_sample_rate_per_operation_overrides_the_api(lines):
    api = make_api({"logging": {"sample_rate": 0.0}})
    api["operations"]["put_item"] = {"plugins": {"logging": {"sample_rate": 1.0}}}
    service = make_service(api)
    wsgi_post(service, PATH, b'{"id": "7"}')
    wsgi_post(service, "/api/v1/put_item", b'{"item": 1}')
    assert [event["operation"] for event in lines.calls("service")] == ["put_item"]


def test_fields_option_limits_the_fields(lines):
    service = make_service(make_api({"logging": {"fields": ["operation", "outcome", "request_id"]}}))
    wsgi_post(service, PATH, b'{"id": "7"}')
    # "side" is not among the fields, so the event is found by its name.
    [event] = [event for event in lines.events() if event["event"] == "call"]
    assert set(event) == {"operation", "outcome", "request_id", "event", "level", "timestamp", "logger"}


def test_disabled_level_writes_nothing_and_still_returns_the_request_id(lines):
    service = make_service(make_api({"logging": {"level": "error"}}))
    _, headers, _ = wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": "quiet-1"})
    assert lines.read() == ""
    assert headers["X-Request-ID"] == "quiet-1"


def test_console_renderer_writes_readable_lines(lines):
    service = make_service(make_api({"logging": {"renderer": "console"}}))
    wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": "console-1"})
    text = lines.read()
    call_line = [line for line in text.splitlines() if "outcome" in line]
    assert len(call_line) == 1
    assert "request_id=console-1" in call_line[0]
    assert not call_line[0].startswith("{")


def test_operation_switched_off_is_not_logged(lines):
    api = make_api()
    api["operations"]["put_item"] = {"plugins": {"logging": False}}
    service = make_service(api)
    wsgi_post(service, "/api/v1/put_item", b'{"item": 1}')
    assert lines.calls("service") == []


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"renderer": "xml"}, "plugins.logging.renderer"),
        ({"level": "loud"}, "plugins.logging.level"),
        ({"fields": ["operation", "nope"]}, "plugins.logging.fields"),
        ({"sample_rate": 1.5}, "plugins.logging.sample_rate"),
        ({"output": "file"}, "plugins.logging.output"),
        ({"request_id_header": "X Request"}, "plugins.logging.request_id_header"),
        ({"configure_stdlib": True, "output": "stdlib"}, "plugins.logging.output"),
    ],
)
def test_bad_config_fails_at_start_up(config, key):
    with pytest.raises(pyservice.ApiError) as raised:
        make_service(make_api({"logging": config}))
    assert raised.value.key == key


def test_context_is_restored_after_the_call(lines):
    service = make_service(make_api())
    tokens = structlog.contextvars.bind_contextvars(request_id="outer", user="u1")
    try:
        wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": "inner"})
        assert structlog.contextvars.get_contextvars() == {"request_id": "outer", "user": "u1"}
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    [event] = lines.calls("service")
    assert event["request_id"] == "inner"
    assert event["user"] == "u1"


def test_concurrent_calls_never_see_each_others_request_id(lines):
    service = pyservice.Service(available_plugins=PLUGINS, **make_api())
    barrier = threading.Barrier(4, timeout=10)
    seen: dict[str, str] = {}

    @service.operation("get_item")
    def get_item(request, response, context):
        barrier.wait()  # every call is inside the service at once
        context.log.info("inside", expected=request.id)
        seen[request.id] = structlog.contextvars.get_contextvars()["request_id"]

    def call(number: int) -> None:
        wsgi_post(service, PATH, b'{"id": "r%d"}' % number, {"X-Request-ID": f"r{number}"})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(call, range(8)))
    assert seen == {f"r{n}": f"r{n}" for n in range(8)}
    inside = [event for event in lines.events() if event["event"] == "inside"]
    assert len(inside) == 8
    assert all(event["request_id"] == event["expected"] for event in inside)
    assert sorted(event["request_id"] for event in lines.calls("service")) == sorted(f"r{n}" for n in range(8))


def test_client_for_round_trip_uses_one_request_id(lines):
    service = make_service(make_api())
    client(service).get_item(id="7")
    [served] = lines.calls("service")
    [called] = lines.calls("client")
    assert served["request_id"] == called["request_id"]
    assert served["trace_id"] == called["trace_id"]
    assert served["parent_id"] == called["span_id"]


def test_what_other_plugins_annotate_joins_the_event(lines):
    service = make_service(make_api())

    @service.plugin(scope="operation")
    def cache(request, response, context):
        context.annotate(cache="miss", status="never overrides the event's own fields")
        context.process_request()

    wsgi_post(service, PATH, b'{"id": "7"}')
    [event] = lines.calls("service")
    assert event["cache"] == "miss"
    assert event["status"] == 200


def _failing_after_the_handler(service: pyservice.Service) -> None:
    # Registered after the plugin's own hook, so it runs inside it, around the encoded answer.
    @service.plugin("request", name="late")
    def late(context):
        context.process_request()
        raise RuntimeError("late failure")


def test_a_hook_failing_after_the_handler_is_logged_as_such(lines):
    service = make_service(make_api())
    _failing_after_the_handler(service)
    status, _, _ = wsgi_post(service, PATH, b'{"id": "7"}')
    assert status == 500
    [event] = lines.calls("service")
    assert (event["outcome"], event["error"]) == ("internal_error", "RuntimeError")
    assert event["detail"].startswith("the handler succeeded; a hook failed after it")
    assert "RuntimeError: late failure" in event["exception"]


def test_core_says_the_handler_succeeded_when_a_later_hook_failed(lines, caplog):
    service = make_service(make_api({"logging": {"level": "critical"}}))
    _failing_after_the_handler(service)
    with caplog.at_level(logging.ERROR, logger="pyservice"):
        wsgi_post(service, PATH, b'{"id": "7"}')
    [record] = [record for record in caplog.records if record.name == "pyservice"]
    assert "after its handler succeeded (a hook failed)" in record.getMessage()


def test_an_event_that_cannot_be_built_leaves_the_answer_alone(lines, monkeypatch):
    service = make_service(make_api({"logging": {"log_bodies": True}}))
    plugin = next(plugin for plugin in service.plugins if plugin.name == "logging")

    def broken(fields, limit):
        raise ValueError("cannot redact")

    monkeypatch.setattr(plugin, "_body", broken)
    status, _, _ = wsgi_post(service, PATH, b'{"id": "7"}')
    assert status == 200
    [event] = lines.calls("service")
    assert (event["outcome"], event["level"]) == ("ok", "error")
    assert event["detail"] == "the call event could not be written: ValueError: cannot redact"


class Tracer(pyservice.Plugin):
    """A tracing plugin's least: it gives the call a span before the logging plugin runs."""

    name = "tracer"
    given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    seen: list[str | None] = []

    def setup(self, owner):
        @owner.plugin("request", name=self.name)
        def trace(context):
            Tracer.seen.append(context.traceparent)
            context.traceparent = Tracer.given
            context.process_request()


def test_a_trace_a_plugin_listed_before_gave_the_call_is_the_events_trace(lines):
    api = make_api({"tracer": {}, "logging": {}})
    service = pyservice.Service(available_plugins=(Tracer, *PLUGINS), **api)
    service.operation("get_item")(lambda request, response, context: None)
    wsgi_post(service, PATH, b'{"id": "7"}')
    [event] = lines.calls("service")
    assert (event["trace_id"], event["span_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert event["request_id"] == event["trace_id"]


def test_a_plugin_listed_after_continues_the_trace_logging_gave_the_call(lines):
    Tracer.seen.clear()
    api = make_api({"logging": {}, "tracer": {}})
    service = pyservice.Service(available_plugins=(Tracer, *PLUGINS), **api)
    service.operation("get_item")(lambda request, response, context: None)
    wsgi_post(service, PATH, b'{"id": "7"}')
    [event] = lines.calls("service")
    assert Tracer.seen == [f"00-{event['trace_id']}-{event['span_id']}-00"]
