"""Slow, stuck and odd peers against the real servers, over HTTP on 127.0.0.1.

The default server (pyservice's own, 2 workers) keeps answering normal calls
while 1,000 connections stall their bodies, 1,000 trickle them and 1,000 idle
keep-alive connections are open; each stalled or trickled body is answered
the JSON 408 at the whole-request deadline; SIGTERM stops the server within
its graceful timeout whatever its peers do; its own errors come in the
protocol's JSON shape; a worker that dies is replaced. gunicorn promises the
same whole-request deadline and the same bounded stop, not the capacity:
each stalled body holds one of its sync workers until the deadline.

Timing is asserted with generous bounds only: before the deadline nothing,
after it an answer within a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from pyservice._http import SWEEP_INTERVAL
from pyservice._prefork import raise_open_files_limit
from pyservice.testing import LiveServer

from .peers import (
    NormalCalls,
    Peer,
    alive,
    await_answers,
    call,
    children_of,
    close_all,
    connect_many,
    eventually,
    exchange,
    idle,
    parse,
    read_answer,
    read_until_closed,
    request_bytes,
    stall,
    tcp_state,
    trickling,
)

APPS = Path(__file__).parent / "apps"
TARGET = "slow_peers_app:service"
REQUEST_TIMEOUT = 3.0
GRACEFUL_TIMEOUT = 3.0
#: How long after its deadline a stalled request may be answered: the sweep's period and a busy machine.
LATE = 4.0
#: The longest a normal call may take while slow peers are connected.
NORMAL_CALL_BOUND = 2.0
MANY = 1000
#: What each server prints when it starts a worker.
WORKER_STARTED = {
    "pyservice": re.compile(r"pyservice: worker (\d+) started"),
    "gunicorn": re.compile(r"Booting worker with pid: (\d+)"),
}


@pytest.fixture(scope="module", autouse=True)
def open_files():
    # Three thousand client sockets are more than the usual soft limit of 1,024.
    limit = raise_open_files_limit()
    if limit < 3 * MANY + 200:
        pytest.skip(f"the open-files limit is {limit}; these tests need {3 * MANY + 200}")


@pytest.fixture(scope="module")
def server():
    with LiveServer(TARGET, workers=2, request_timeout=REQUEST_TIMEOUT, cwd=APPS) as server:
        yield server


# -- checks --------------------------------------------------------------------


def assert_request_timeouts(peers: list[Peer], deadline: float) -> None:
    """Every peer was answered the JSON 408, not before its deadline and not long after."""
    unanswered = [peer for peer in peers if not peer.answered_at]
    assert not unanswered, f"{len(unanswered)} of {len(peers)} were never answered"
    for peer in peers:
        answer = parse(peer.data)
        assert answer.status == 408, (answer.status, answer.body[:200])
        assert answer.error()["name"] == "RequestTimeout"
    waited = sorted(peer.answered_at - peer.sent_at for peer in peers)
    # The server's clock is read once per sweep: its deadlines are as precise as that.
    assert waited[0] >= deadline - SWEEP_INTERVAL, f"answered after {waited[0]:.2f}s, before the {deadline}s deadline"
    assert waited[-1] < deadline + LATE, f"answered after {waited[-1]:.2f}s, long after the {deadline}s deadline"


# -- the default server under load -------------------------------------------


def test_normal_calls_are_answered_while_1000_bodies_stall_and_1000_connections_idle(server):
    idle_socks = idle(server, MANY)
    with NormalCalls(server) as normal:
        stalled = stall(server, MANY)
        await_answers(stalled, REQUEST_TIMEOUT + LATE + 5)
    try:
        normal.check(NORMAL_CALL_BOUND)
        assert_request_timeouts(stalled, REQUEST_TIMEOUT)
    finally:
        close_all(peer.sock for peer in stalled)
        close_all(idle_socks)
    times = sorted(seconds for _, seconds in normal.results)
    print(f"\n{len(times)} normal calls: p50 {times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")


def test_idle_keep_alive_connections_are_kept_and_still_serve(server):
    socks = idle(server, MANY)
    try:
        time.sleep(1.0)
        for sock in socks:
            sock.sendall(request_bytes(body=b'{"again": true}'))
        answers = [read_answer(sock) for sock in socks]
    finally:
        close_all(socks)
    assert {answer.status for answer in answers} == {200}


def test_trickled_bodies_are_answered_408_at_the_whole_request_deadline(server):
    # One byte every 0.5 s: each read is quick, the whole 60-byte body would take 30 s.
    with NormalCalls(server) as normal:
        peers = trickling(server, MANY)
        await_answers(peers, REQUEST_TIMEOUT + LATE + 5)
    try:
        normal.check(NORMAL_CALL_BOUND)
        assert_request_timeouts(peers, REQUEST_TIMEOUT)
    finally:
        close_all(peer.sock for peer in peers)


def test_a_slow_body_within_the_deadline_is_served(server):
    peers = trickling(server, 20, length=12)  # 12 bytes at 0.1 s: about 1.2 s, within 3 s
    await_answers(peers, REQUEST_TIMEOUT + LATE, drip=0.1)
    close_all(peer.sock for peer in peers)
    assert [parse(peer.data).status for peer in peers] == [200] * 20


# -- the server's own errors, in the protocol's shape ------------------------

HEAD = b"POST /api/v1/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"

CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"
EMPTY = b"Content-Length: 2\r\n\r\n{}"
UPGRADE = b"Connection: Upgrade\r\nUpgrade: h2c\r\n"
MANY_HEADERS = b"".join(b"X-H%d: v\r\n" % i for i in range(500))

REFUSED = [
    ("a transfer coding other than chunked", HEAD + b"Transfer-Encoding: gzip\r\n\r\n{}", 400, "MalformedRequest"),
    (
        "chunked not last",
        HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        400,
        "MalformedRequest",
    ),
    ("a bad chunk size", HEAD + CHUNKED + b"ZZ\r\n{}\r\n0\r\n\r\n", 400, "MalformedRequest"),
    ("both framings", HEAD + b"Content-Length: 2\r\n" + CHUNKED + b"2\r\n{}\r\n0\r\n\r\n", 400, "MalformedRequest"),
    ("conflicting lengths", HEAD + b"Content-Length: 2\r\n" + EMPTY, 400, "MalformedRequest"),
    ("a negative length", HEAD + b"Content-Length: -2\r\n\r\n{}", 400, "MalformedRequest"),
    ("a header over the limit", HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n" + EMPTY, 431, "HeadersTooLarge"),
    ("a flood of empty headers", HEAD + b"a:\r\n" * 60_000 + EMPTY, 431, "HeadersTooLarge"),
    ("a flood of headers", HEAD + MANY_HEADERS + EMPTY, 431, "HeadersTooLarge"),
    ("a request line over the limit", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "URITooLong"),
    ("a malformed request line", b"\x00\x01\x02 nonsense\r\n\r\n", 400, "MalformedRequest"),
    ("an unknown HTTP version", b"POST /api/v1/echo HTTP/7.3\r\nHost: t\r\n\r\n", 400, "MalformedRequest"),
    ("an upgrade with a body", HEAD + UPGRADE + EMPTY, 400, "MalformedRequest"),
]


@pytest.mark.parametrize(("case", "data", "status", "name"), REFUSED, ids=[case for case, *_ in REFUSED])
def test_the_server_refuses_in_the_protocol_error_shape(server, case, data, status, name):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        answer = parse(read_until_closed(sock), alone=True)
    assert answer.status == status, (case, answer.status, answer.body[:200])
    assert answer.error()["name"] == name


def test_a_header_that_never_ends_is_refused_as_it_grows(server):
    # The parser keeps a header to itself until it ends: the server counts what arrives.
    sent = 0
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(HEAD + b"X-Endless: ")
        try:
            while sent < 8 * 1024 * 1024 and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"a" * 16384)
                sent += 16384
                time.sleep(0.001)  # separate reads, as from a slow network
        except OSError:
            pass  # refused and closed while we were sending
        answer = parse(read_until_closed(sock))
    assert answer.status == 431, (answer.status, answer.body[:200])
    assert answer.error()["name"] == "HeadersTooLarge"
    assert sent < 2 * 1024 * 1024


def test_a_refusal_is_framed_by_its_content_length(server):
    # A client reads exactly Content-Length bytes: the JSON must be all of them.
    answer = exchange(server, HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
    assert answer.status == 400
    assert answer.error()["name"] == "MalformedRequest"


def test_an_oversized_length_is_413_before_the_body_is_sent(server):
    started = time.monotonic()
    answer = exchange(server, HEAD + b"Content-Length: 1000000000\r\n\r\n")
    assert answer.status == 413
    assert answer.error()["name"] == "BodyTooLarge"
    assert time.monotonic() - started < REQUEST_TIMEOUT  # not the deadline of a body never sent


def test_expect_100_continue_is_answered_before_the_body(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Expect: 100-continue\r\nContent-Length: 8\r\n\r\n")
        interim = sock.recv(1024)
        sock.sendall(b'{"a": 1}')
        answer = read_answer(sock)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert (answer.status, json.loads(answer.body)["a"]) == (200, 1)


def test_expect_100_continue_with_an_oversized_length_is_413_without_continue(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Expect: 100-continue\r\nContent-Length: 1000000000\r\n\r\n")
        data = read_until_closed(sock)
    assert b"100 Continue" not in data
    answer = parse(data)
    assert answer.status == 413
    assert answer.error()["name"] == "BodyTooLarge"


def test_a_request_cut_short_by_the_caller_is_400(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request_bytes(body=b'{"a": 1', length=100))
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.error()["name"] == "MalformedRequest"


def test_an_upgrade_without_a_body_is_answered_over_http_1_1(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        first = read_answer(sock)
        sock.sendall(request_bytes())  # the same connection still speaks HTTP/1.1
        second = read_answer(sock)
    assert (first.status, second.status) == (200, 200)


# -- a connection that does not read its answers ------------------------------


def send_for_ever(sock: socket.socket, data: bytes) -> None:
    for _ in range(100_000):
        sock.sendall(data)


def test_a_peer_that_does_not_read_its_answers_is_cut_off():
    # Requests pipelined until every buffer is full, and no answer read: the
    # server must not keep the connection, and the answers it holds, for ever.
    keepalive = 1.0
    env = {"PYSERVICE_KEEPALIVE_TIMEOUT": str(keepalive)}
    with LiveServer(TARGET, workers=1, request_timeout=REQUEST_TIMEOUT, cwd=APPS, env=env) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((server.host, server.port))
        sock.settimeout(0.5)
        request = request_bytes(body=b'{"x": "' + b"y" * 30_000 + b'"}')
        with pytest.raises(TimeoutError):
            send_for_ever(sock, request)
        assert tcp_state(sock) == 1  # established, the server's buffers full
        assert eventually(lambda: tcp_state(sock) != 1, seconds=2 * keepalive + REQUEST_TIMEOUT + LATE)
        sock.close()
        assert call(server)[0] == 200


# -- stopping ------------------------------------------------------------------


def slow_call_in_thread(server: LiveServer, seconds: float):
    results: list[object] = []

    def run() -> None:
        try:
            results.append(call(server, "slow", {"seconds": seconds}, timeout=seconds + 30))
        except OSError as exc:  # the test asserts on it
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def stop_and_time(server: LiveServer) -> tuple[float, list[int], list[int]]:
    """SIGTERM the server; how long it took to exit, its workers, and those still alive after."""
    assert server.process is not None
    workers = children_of(server.process.pid)
    assert workers
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=GRACEFUL_TIMEOUT + 30)
    took = time.monotonic() - started
    return took, workers, [pid for pid in workers if eventually(lambda pid=pid: not alive(pid), seconds=2) is False]


@pytest.mark.parametrize("kind", ["pyservice", "gunicorn"])
def test_sigterm_stops_within_the_graceful_timeout_and_answers_the_call_in_flight(kind):
    count = 100
    with LiveServer(
        TARGET, server=kind, workers=2, request_timeout=REQUEST_TIMEOUT, graceful_timeout=GRACEFUL_TIMEOUT, cwd=APPS
    ) as server:
        thread, results = slow_call_in_thread(server, 1.5)
        time.sleep(0.3)  # in the worker now
        stalled = stall(server, count)
        trickled = trickling(server, count)
        quiet = connect_many(server, count)
        drip = threading.Thread(target=await_answers, args=(trickled, GRACEFUL_TIMEOUT + 5), daemon=True)
        drip.start()
        took, workers, left = stop_and_time(server)
        thread.join(timeout=30)
        close_all(peer.sock for peer in stalled)
        close_all(quiet)
        drip.join(timeout=30)
        close_all(peer.sock for peer in trickled)
        output = server.stop()
    assert took < GRACEFUL_TIMEOUT + 2, f"{kind} took {took:.2f}s to stop"
    assert left == [], f"workers left behind: {left}"
    assert len(results) == 1, results
    assert not isinstance(results[0], Exception), results
    status, body, _ = results[0]
    assert (status, body["pid"] in workers) == (200, True), (status, body)
    assert "Traceback" not in output


def test_sigterm_kills_a_call_that_outlasts_the_graceful_timeout():
    with LiveServer(TARGET, workers=2, request_timeout=REQUEST_TIMEOUT, graceful_timeout=1.0, cwd=APPS) as server:
        thread, _ = slow_call_in_thread(server, 60)
        time.sleep(0.3)
        took, _, left = stop_and_time(server)
        thread.join(timeout=30)
    assert took < 1.0 + 2, f"took {took:.2f}s to stop"
    assert left == []


# -- workers dying ------------------------------------------------------------


def worker_pids(server: LiveServer) -> list[int]:
    return [int(pid) for pid in WORKER_STARTED[server.server].findall(server.output())]


def test_a_killed_worker_is_replaced_and_calls_are_answered():
    with LiveServer(TARGET, workers=2, request_timeout=REQUEST_TIMEOUT, cwd=APPS) as server:
        # The arbiter accepts before it forks: its workers say they started a moment later.
        first = eventually(lambda: worker_pids(server) if len(worker_pids(server)) == 2 else [], seconds=10)
        assert len(first) == 2, server.output()
        time.sleep(1.2)  # past the arbiter's quick-death delay
        os.kill(first[0], signal.SIGKILL)
        with NormalCalls(server, interval=0.02, limit=100) as normal:
            replaced = eventually(lambda: [pid for pid in worker_pids(server) if pid not in first], seconds=10)
            assert len(replaced) == 1, server.output()
            # The new worker takes its share of new connections.
            assert eventually(lambda: call(server)[1]["pid"] == replaced[0], seconds=10, interval=0)
            time.sleep(0.5)
        normal.check(NORMAL_CALL_BOUND)
        assert set(children_of(server.process.pid)) == {first[1], replaced[0]}


def test_workers_stop_when_the_arbiter_is_killed():
    with LiveServer(TARGET, workers=2, request_timeout=REQUEST_TIMEOUT, cwd=APPS) as server:
        assert eventually(lambda: len(worker_pids(server)) == 2, seconds=10), server.output()
        workers = children_of(server.process.pid)
        server.process.kill()
        server.process.wait()
        try:
            assert eventually(lambda: not any(alive(pid) for pid in workers), seconds=5), "orphaned workers live on"
        finally:
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


# -- gunicorn: the same deadline, a worker per slow peer ----------------------


def test_gunicorn_answers_trickled_bodies_408_at_the_deadline_and_keeps_its_workers():
    with LiveServer(TARGET, server="gunicorn", workers=2, request_timeout=REQUEST_TIMEOUT, cwd=APPS) as server:
        peers = trickling(server, 2)  # as many as it has workers: each is held until the deadline
        drip = threading.Thread(target=await_answers, args=(peers, REQUEST_TIMEOUT + LATE + 5), daemon=True)
        drip.start()
        time.sleep(0.5)
        status, _, seconds = call(server, timeout=REQUEST_TIMEOUT + LATE + 5)
        drip.join(timeout=30)
        close_all(peer.sock for peer in peers)
        output = server.output()
    assert status == 200
    assert seconds < REQUEST_TIMEOUT + LATE  # waited for a worker, never for gunicorn's worker timeout
    assert_request_timeouts(peers, REQUEST_TIMEOUT)
    assert "WORKER TIMEOUT" not in output
    assert len(WORKER_STARTED["gunicorn"].findall(output)) == 2


# -- every worker stuck in a call: the arbiter answers --------------------------


def test_the_arbiter_answers_a_probe_while_every_worker_is_stuck_and_closes_the_connection():
    # It answers one request per connection: a keep-alive answer would send the
    # caller's next call into a closed socket.
    with LiveServer(TARGET, workers=2, request_timeout=REQUEST_TIMEOUT, cwd=APPS) as server:
        stuck = []
        for _ in range(2):  # one per worker: a worker in a call accepts no connection
            stuck.append(slow_call_in_thread(server, 4.0)[0])
            time.sleep(0.25)
        time.sleep(1.5)  # past the busy timeout (1 s by default)
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = read_answer(sock)
        for thread in stuck:
            thread.join(timeout=30)
    assert answer.status == 200
    assert answer.headers.get("connection") == "close"
