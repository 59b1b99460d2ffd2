"""Bad input at the HTTP boundary, over real sockets, against the production server.

Every answer is the protocol's error shape with the right status (or, for
HTTP the server itself cannot parse, the server's own 4xx), no worker dies,
memory stays bounded, and valid calls made between the bad ones succeed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyservice.testing import LiveServer

APPS = Path(__file__).parent / "apps"
SOAK = os.environ.get("PYSERVICE_SOAK") == "1"
#: What each server prints when it starts a worker.
WORKER_STARTED = {"pyservice": r"pyservice: worker \d+ started", "gunicorn": r"Booting worker with pid: \d+"}
HEAD = b"POST /api/v1/echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\n"


@pytest.fixture(scope="module")
def server():
    with LiveServer("boundary_app:service", workers=2, read_timeout=1, cwd=APPS) as server:
        yield server


def exchange(server, data: bytes, *, drip: float = 0.0, half_close: bool = False, wait: float = 10.0):
    """Send raw bytes, return (status, headers, body) of the answer."""
    with socket.create_connection((server.host, server.port), timeout=wait) as sock:
        if drip:
            for i in range(0, len(data), 8):
                sock.sendall(data[i : i + 8])
                time.sleep(drip)
        else:
            sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1]) if lines and lines[0] else 0
    headers = {key.strip().lower(): value.strip() for key, _, value in (line.partition(b":") for line in lines[1:])}
    return status, headers, body


def post(body: bytes, path: bytes = b"/api/v1/echo", extra: bytes = b"") -> bytes:
    head = HEAD.replace(b"/api/v1/echo", path)
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def error_of(status, headers, body):
    assert headers.get(b"content-type") == b"application/json", (status, body[:200])
    payload = json.loads(body)
    assert set(payload) == {"error"}
    error = payload["error"]
    assert isinstance(error["name"], str)
    assert isinstance(error["message"], str)
    assert error["kind"] in ("protocol", "exception", "internal")
    return error


def valid_call_succeeds(server):
    status, _, body = exchange(server, post(b'{"ok": true}'))
    assert (status, json.loads(body)) == (200, {"ok": True})


CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"
BIG_CHUNK = b"ffff\r\n" + b"x" * 0xFFFF + b"\r\n"
EMPTY_OBJECT = b"Content-Length: 2\r\n\r\n{}"

CORPUS = [
    ("malformed JSON", post(b'{"a": }'), 400, "MalformedJSON"),
    ("truncated JSON", post(b'{"a": [1, 2'), 400, "MalformedJSON"),
    ("invalid UTF-8", post(b'{"a": "\xc3\x28"}'), 400, "MalformedJSON"),
    ("lone surrogate escape", post(b'{"a": "\\ud800"}'), 400, "MalformedJSON"),
    ("an array", post(b"[1, 2, 3]"), 400, "MalformedRequest"),
    ("a string", post(b'"hello"'), 400, "MalformedRequest"),
    ("null", post(b"null"), 400, "MalformedRequest"),
    ("empty body", post(b""), 400, "MalformedJSON"),
    ("deep nesting", post(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"), 400, "MalformedJSON"),
    ("NaN", post(b'{"a": NaN}'), 400, "MalformedJSON"),
    ("Infinity", post(b'{"a": -Infinity}'), 400, "MalformedJSON"),
    ("a number beyond a double", post(b'{"a": 1e999}'), 400, "MalformedJSON"),
    ("oversized body", post(b'{"a": "' + b"x" * 100_000 + b'"}'), 413, "BodyTooLarge"),
    ("oversized declared length", HEAD + b"Content-Length: 999999999\r\n\r\n{}", 413, "BodyTooLarge"),
    ("no length", HEAD + b"\r\n{}", 411, "LengthRequired"),
    ("wrong content type", post(b"{}").replace(b"application/json", b"text/plain"), 415, "UnsupportedMediaType"),
    ("latin-1 charset", post(b"{}").replace(b"application/json", b"application/json; charset=latin-1"), 415, None),
    ("unknown operation", post(b"{}", path=b"/api/v1/nope"), 404, "UnknownOperation"),
    ("unknown version", post(b"{}", path=b"/api/v9/echo"), 404, "UnknownOperation"),
    ("root path", post(b"{}", path=b"/"), 404, "UnknownOperation"),
    ("GET", HEAD.replace(b"POST", b"GET") + b"\r\n", 405, "MethodNotAllowed"),
    ("DELETE", HEAD.replace(b"POST", b"DELETE") + b"Content-Length: 0\r\n\r\n", 405, "MethodNotAllowed"),
    ("bad chunk size", HEAD + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n", 400, "MalformedRequest"),
    ("chunked over the limit", HEAD + CHUNKED + BIG_CHUNK * 2 + b"0\r\n\r\n", 413, "BodyTooLarge"),
    # The server refuses these before the application runs, in its own format.
    ("negative length", HEAD + b"Content-Length: -5\r\n\r\n{}", 400, "server"),
    ("both framings", HEAD + b"Content-Length: 2\r\n" + CHUNKED + b"2\r\n{}\r\n0\r\n\r\n", 400, "server"),
    ("two lengths", HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "server"),
    ("header flood", HEAD + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + EMPTY_OBJECT, 431, "server"),
    ("huge header", HEAD + b"X-Big: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\n{}", 431, "server"),
    ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n", 400, "server"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "status", "name"), CORPUS, ids=[case for case, *_ in CORPUS])
def test_a_bad_request_gets_the_error_shape_and_the_next_call_succeeds(server, case, data, status, name):
    got, headers, body = exchange(server, data)
    if name == "server":
        assert 400 <= got < 500, (case, got, body[:200])
    else:
        assert got == status, (case, body[:300])
        error = error_of(got, headers, body)
        assert error["kind"] == "protocol"
        if name is not None:
            assert error["name"] == name
    valid_call_succeeds(server)


def test_duplicate_keys_keep_the_last_value(server):
    status, _, body = exchange(server, post(b'{"a": 1, "a": 2}'))
    assert (status, json.loads(body)) == (200, {"a": 2})


def test_an_integer_beyond_64_bits_is_read_as_a_double(server):
    status, _, body = exchange(server, post(b'{"a": 123456789012345678901234567890}'))
    assert status == 200
    assert json.loads(body)["a"] == pytest.approx(1.2345678901234568e29)


def test_a_body_that_stops_arriving_is_408_after_the_read_timeout(server):
    status, headers, body = exchange(server, HEAD + b'Content-Length: 100\r\n\r\n{"a": 1')
    assert status == 408
    assert error_of(status, headers, body)["name"] == "RequestTimeout"
    valid_call_succeeds(server)


def test_a_body_shorter_than_its_length_then_closed_is_400(server):
    status, headers, body = exchange(server, HEAD + b'Content-Length: 100\r\n\r\n{"a": 1', half_close=True)
    assert status == 400
    assert error_of(status, headers, body)["name"] == "MalformedRequest"


def test_a_slow_body_within_the_read_timeout_is_served(server):
    status, _, body = exchange(server, post(b'{"slow": "' + b"s" * 40 + b'"}'), drip=0.05)
    assert status == 200
    assert json.loads(body) == {"slow": "s" * 40}


def test_an_incomplete_chunked_body_is_refused(server):
    status, headers, body = exchange(server, HEAD + b"Transfer-Encoding: chunked\r\n\r\n10\r\n{}", half_close=True)
    assert status in (400, 408)
    error_of(status, headers, body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300 if SOAK else 40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300) | json_values.map(lambda value: json.dumps(value).encode()))
def test_any_body_gets_a_json_object_or_the_error_shape(server, body):
    status, headers, answer = exchange(server, post(body))
    assert status in (200, 400), (body, status, answer[:200])
    if status == 200:
        assert isinstance(json.loads(answer), dict)
    else:
        assert error_of(status, headers, answer)["kind"] == "protocol"


@settings(max_examples=200 if SOAK else 30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from([b"POST", b"GET", b"PUT", b"PATCH", b"OPTIONS"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_-.%", max_size=40),
    content_type=st.sampled_from([b"application/json", b"text/plain", b"application/json; charset=utf-8", b""]),
)
def test_any_method_path_and_type_gets_an_answer_in_the_error_shape(server, method, path, content_type):
    request = (
        method + b" /" + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: " + content_type
        + b"\r\nContent-Length: 2\r\n\r\n{}"
    )  # fmt: skip
    status, headers, answer = exchange(server, request)
    assert status in (200, 400, 404, 405, 415), (request, status, answer[:200])
    if status != 200:
        error_of(status, headers, answer)


def worker_rss_kib(server) -> dict[int, int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    sizes = {}
    for pid in map(int, children):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes[pid] = int(line.split()[1])
    return sizes


def test_no_worker_died_and_memory_stayed_bounded(server):
    # Runs last in this module: the worker set is the one that booted, and
    # hammering it with oversized and broken bodies did not grow it much.
    before = worker_rss_kib(server)
    rounds = 400 if SOAK else 60
    for i in range(rounds):
        exchange(server, post(b'{"a": "' + b"x" * 100_000 + b'"}'))
        exchange(
            server, HEAD + b"Transfer-Encoding: chunked\r\n\r\nffff\r\n" + b"y" * 0xFFFF + b"\r\n" * 2 + b"0\r\n\r\n"
        )
        if i % 10 == 0:
            valid_call_succeeds(server)
    after = worker_rss_kib(server)
    assert set(after) == set(before), "a worker was replaced"
    for pid, size in after.items():
        assert size - before[pid] < 20 * 1024, f"worker {pid} grew from {before[pid]} KiB to {size} KiB"
    output = server.output()
    assert len(re.findall(WORKER_STARTED[server.server], output)) == 2
    assert "WORKER TIMEOUT" not in output
