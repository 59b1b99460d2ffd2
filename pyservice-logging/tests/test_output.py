from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import string
import sys
import time

import pyservice
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from pyservice_logging import Redactor
from pyservice_logging import _logging as plugin_module
from pyservice_logging._output import JSONRenderer, StreamLogger, TimeStamper, _render

from .conftest import PLUGINS, make_api, make_service, wsgi_post

PATH = "/api/v1/get_item"
CARD = "4111111111111111"


class BinaryStream(io.TextIOWrapper):
    """A stdout/stderr stand-in whose bytes the test reads back."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", line_buffering=False)

    def written(self) -> bytes:
        self.flush()
        data: bytes = self.buffer.getvalue()  # type: ignore[attr-defined]
        return data


# -- where lines go -------------------------------------------------------------


def test_stdout_lines_are_bytes_written_to_the_binary_buffer(monkeypatch):
    stream = BinaryStream()
    monkeypatch.setattr(sys, "stdout", stream)
    service = make_service(make_api({"logging": {"output": "stdout"}}))
    wsgi_post(service, PATH, b'{"id": "7"}')
    lines = stream.written().split(b"\n")
    assert lines[-1] == b""
    events = [json.loads(line) for line in lines[:-1]]
    assert [event["event"] for event in events] == ["looking up", "call"]


def test_text_printed_before_a_line_stays_before_it(monkeypatch):
    stream = BinaryStream()
    monkeypatch.setattr(sys, "stdout", stream)
    logger = StreamLogger("stdout")
    print("printed first", end="|")  # waits in the text layer: no newline, no flush
    logger.msg(b'{"event":"after"}')
    assert stream.written() == b'printed first|{"event":"after"}\n'


def test_a_stream_without_a_binary_buffer_gets_text(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    StreamLogger("stderr").msg(b'{"event":"x"}')
    assert stream.getvalue() == '{"event":"x"}\n'


def test_lines_follow_the_stream_as_it_is_when_written(monkeypatch):
    logger = StreamLogger("stderr")
    first, second = BinaryStream(), BinaryStream()
    monkeypatch.setattr(sys, "stderr", first)
    logger.msg(b"one")
    monkeypatch.setattr(sys, "stderr", second)
    logger.msg(b"two")
    assert (first.written(), second.written()) == (b"one\n", b"two\n")


def test_stream_output_makes_no_stdlib_log_record(monkeypatch, lines):
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def spy(*args, **kwargs):
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    monkeypatch.setattr(logging, "_logRecordFactory", spy)
    service = make_service(make_api({"logging": {"logger_name": "test.no.records"}}))
    wsgi_post(service, PATH, b'{"id": "7"}')
    assert len(lines.calls("service")) == 1
    assert made == []
    assert logging.getLogger("test.no.records").handlers == []


# -- rendering ------------------------------------------------------------------


def test_what_orjson_refuses_is_rendered_by_json():
    # Card numbers off: 2**70 is a digit run long enough to be masked otherwise.
    render = JSONRenderer(Redactor(card_numbers=False))
    line = render(None, "info", {"big": 2**70, "keys": {1: "one"}, "event": "x"})
    assert json.loads(line) == {"big": 2**70, "keys": {"1": "one"}, "event": "x"}


def test_lone_surrogates_are_escaped_not_fatal():
    line = JSONRenderer(Redactor())(None, "info", {"text": "a\udc80b"})
    assert json.loads(line) == {"text": "a\udc80b"}


def test_dataclasses_are_rendered_by_their_repr():
    @dataclasses.dataclass
    class Point:
        x: int

    line = JSONRenderer(Redactor())(None, "info", {"point": Point(1)})
    assert json.loads(line)["point"].endswith("Point(x=1)")


def test_non_dict_mappings_are_walked_and_redacted():
    request = pyservice.Container.wrap({"user": "ann", "password": "hunter2"})
    line = JSONRenderer(Redactor())(None, "info", {"request": request})
    assert json.loads(line) == {"request": {"user": "ann", "password": "[REDACTED]"}}


def test_text_renderer_returns_str():
    assert JSONRenderer(Redactor(), text=True)(None, "info", {"event": "x"}) == '{"event":"x"}'


# -- the rendered-line check ---------------------------------------------------


@pytest.mark.parametrize(
    ("event", "plain"),
    [
        ({"event": "call", "status": 200, "request_id": "4bf92f3577b34da6a3ce929d0e0e4736"}, True),
        ({"event": "call", "timestamp": "2026-12-02T05:36:31.358724Z", "duration_ms": 0.5}, True),
        ({"event": "call", "password": "x"}, False),
        ({"event": "call", "nested": {"a": 1}}, False),
        ({"event": "call", "items": [1]}, False),
        ({"event": "call", "name": "caf\u00e9"}, False),
        ({"event": "call", "note": "paid with 4111-1111-1111-1111"}, False),
        ({"event": "call", "order": 1234567890123}, False),
    ],
)
def test_plain_json_sends_anything_doubtful_to_full_redaction(event, plain):
    redactor = Redactor()
    assert redactor.plain_json(event, _render(event)) is plain


def test_a_card_number_as_request_id_is_masked_in_the_line(lines):
    service = make_service(make_api())
    wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": CARD})
    assert CARD not in lines.read()
    [event] = lines.calls("service")
    assert event["request_id"] == "[REDACTED]"


KEYS = st.text(string.ascii_letters + "_-", min_size=1, max_size=8)
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.integers(-(10**20), 10**20),
        st.text(max_size=30),
        st.text("0123456789 -", min_size=12, max_size=24),
    ),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, database=None)
@given(event=st.dictionaries(KEYS, VALUES, max_size=8), patterns=st.lists(KEYS, max_size=2))
def test_the_rendered_line_check_never_changes_a_line(event, patterns):
    redactor = Redactor(patterns)
    expected = _render(Redactor(patterns)(None, "info", dict(event)))
    assert JSONRenderer(redactor)(None, "info", dict(event)) == expected
    # Once the keys are known, the fast path gives the same line too.
    assert JSONRenderer(redactor)(None, "info", dict(event)) == expected


# -- the timestamp --------------------------------------------------------------


def test_timestamp_is_structlogs_iso_utc_text(monkeypatch):
    now = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: now)
    ours = TimeStamper()(None, "info", {})["timestamp"]
    seconds, micros = divmod(now // 1000, 1_000_000)
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (f".{micros:06d}" if micros else "") + "Z"
    assert ours == expected
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", ours)


def test_timestamp_leaves_a_zero_fraction_out_like_structlog(monkeypatch):
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000 * 10**9)
    ours = TimeStamper()(None, "info", {})["timestamp"]
    # structlog's TimeStamper writes datetime.isoformat(), which drops a zero fraction.
    assert ours == "2023-11-14T22:13:20Z"


def test_timestamp_moves_on_to_the_next_second(monkeypatch):
    stamper = TimeStamper()
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_999_999_000)
    assert stamper(None, "info", {})["timestamp"] == "2023-11-14T22:13:20.999999Z"
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_001_000_001_000)
    assert stamper(None, "info", {})["timestamp"] == "2023-11-14T22:13:21.000001Z"


# -- events that are not written ------------------------------------------------


def _refuse_events(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an event was built")

    monkeypatch.setattr(plugin_module, "_service_event", refuse)


def test_a_sampled_out_success_builds_no_event_and_keeps_the_request_id(monkeypatch, lines):
    service = make_service(make_api({"logging": {"sample_rate": 0.0}}))
    _refuse_events(monkeypatch)
    status, headers, _ = wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": "sampled-1"})
    assert (status, headers["X-Request-ID"]) == (200, "sampled-1")
    assert lines.calls("service") == []
    [own] = [event for event in lines.events() if event["event"] == "looking up"]
    assert own["request_id"] == "sampled-1"


def test_a_disabled_level_builds_no_event(monkeypatch, lines):
    service = make_service(make_api({"logging": {"level": "error"}}))
    _refuse_events(monkeypatch)
    status, headers, _ = wsgi_post(service, PATH, b'{"id": "7"}', {"X-Request-ID": "quiet-2"})
    assert (status, headers["X-Request-ID"]) == (200, "quiet-2")
    assert lines.read() == ""


def test_the_request_id_context_variable_is_structlogs_own():
    var = plugin_module._request_id_var()
    token = var.set("set-directly")
    try:
        assert structlog.contextvars.get_contextvars()["request_id"] == "set-directly"
    finally:
        var.reset(token)
    assert "request_id" not in structlog.contextvars.get_contextvars()


def test_services_sharing_the_plugin_write_whole_lines(lines):
    first = pyservice.Service(available_plugins=PLUGINS, **make_api())
    second = pyservice.Service(available_plugins=PLUGINS, **make_api())
    for service in (first, second):

        @service.operation("get_item")
        def get_item(request, response, context):
            response.ok = True

    wsgi_post(first, PATH, b'{"id": "1"}')
    wsgi_post(second, PATH, b'{"id": "2"}')
    assert len(lines.calls("service")) == 2
