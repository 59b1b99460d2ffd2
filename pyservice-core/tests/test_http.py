"""Over real HTTP: the service under `pyservice serve` (its own server and gunicorn, 2 workers), a real Client."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pyservice
import pyservice.testing
import pytest
import requests

APPS = Path(__file__).parent / "apps"


#: What each server prints when it starts a worker.
WORKER_STARTED = {"pyservice": "pyservice: worker", "gunicorn": "Booting worker"}


@pytest.fixture(scope="module", params=["pyservice", "gunicorn"])
def server(request):
    # A short request deadline so that the body timeout test is quick.
    with pyservice.testing.LiveServer(
        "live_app:service", server=request.param, workers=2, request_timeout=1, cwd=APPS
    ) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    import sys

    sys.path.insert(0, str(APPS))
    try:
        import live_app
    finally:
        sys.path.remove(str(APPS))
    with pyservice.Client(**{**live_app.api, "endpoint": {"port": server.port}}) as client:
        yield client


def raw_request(server, data: bytes, *, timeout: float = 10.0) -> tuple[int, bytes]:
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def test_a_call_over_http_runs_both_scopes(client):
    answer = client.echo(name="world")
    assert answer == {"name": "world", "stamped": True}


def test_whitelisted_exceptions_reach_the_client_by_name(client):
    with pytest.raises(client.exceptions.Refused) as raised:
        client.refuse(who="eve")
    assert raised.value.args == ("not you", "eve")


def test_an_internal_error_reaches_the_client_without_its_message(client):
    with pytest.raises(pyservice.ServiceError) as raised:
        client.fail()
    assert raised.value.status == 500
    assert "hunter2" not in str(raised.value.detail)


def test_a_new_connection_is_answered_by_a_worker_not_busy_in_a_call(server):
    # A worker answers one call at a time and does not accept while in one,
    # so a call on a new connection made during a slow call reaches the other worker.
    call = (
        b"POST /api/v1/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 17\r\nConnection: close\r\n\r\n{"seconds": 0.75}'
    )
    answers = []
    first = threading.Thread(target=lambda: answers.append(raw_request(server, call)))
    first.start()
    time.sleep(0.25)
    answers.append(raw_request(server, call))
    first.join()
    pids = {pyservice._wire.loads(body)["pid"] for status, body in answers if status == 200}
    assert len(pids) == 2


def test_the_caller_address_is_the_peer(client):
    assert client.whoami().remote_addr == "127.0.0.1"


def test_a_hook_header_reaches_the_caller(client, server):
    response = requests.post(
        server.url + "/api/v1/echo", data=b"{}", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert response.headers["X-Worker"].isdigit()


def test_a_slow_call_times_out_on_the_client(client):
    with pytest.raises(pyservice.CallTimeout):
        client.call("slow", {"seconds": 1.0}, timeout=0.2)


def test_an_oversized_body_is_413_over_http(client):
    with pytest.raises(pyservice.ServiceError) as raised:
        client.small(blob="x" * 100)
    assert (raised.value.status, raised.value.name) == (413, "BodyTooLarge")


def test_a_body_shorter_than_its_length_ends_in_408_and_the_worker_lives(server, client):
    started = time.monotonic()
    status, body = raw_request(
        server,
        b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"a": 1',
    )
    assert status == 408
    assert b'"name":"RequestTimeout"' in body
    assert time.monotonic() - started < 10
    assert client.echo(after=True).after is True
    # Two workers booted at start, and none since: no worker was killed.
    assert server.output().count(WORKER_STARTED[server.server]) == 2
    assert "WORKER TIMEOUT" not in server.output()


def test_a_chunked_body_is_read(server):
    payload = b'{"a": "' + b"x" * 1000 + b'"}'
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(payload[i : i + 100]), payload[i : i + 100]) for i in range(0, len(payload), 100)
    )
    status, body = raw_request(
        server,
        b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n",
    )
    assert status == 200
    assert pyservice._wire.loads(body)["a"] == "x" * 1000


def test_a_chunked_body_over_the_limit_is_413(server):
    chunk = b"x" * 1000
    status, body = raw_request(
        server,
        b"POST /api/v1/small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk),
    )
    assert status == 413
    assert b'"BodyTooLarge"' in body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_works(server):
    output = subprocess.run(
        ["curl", "-s", "-H", "Content-Type: application/json", "-d", '{"via": "curl"}', server.url + "/api/v1/echo"],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout
    assert pyservice._wire.loads(output) == {"via": "curl", "stamped": True}


def test_many_threads_share_one_client(client):
    errors = []

    def work(n):
        try:
            for i in range(25):
                assert client.echo(n=n, i=i) == {"n": n, "i": i, "stamped": True}
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
