"""`pyservice serve` under each server it offers."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import pyservice
import pytest
from pyservice.testing import LiveServer, free_port

APPS = Path(__file__).parent / "apps"


@pytest.mark.skipif(importlib.util.find_spec("granian") is None, reason="granian is not installed")
def test_granian_serves_the_same_protocol():
    with LiveServer("live_app:service", server="granian", workers=1, cwd=APPS) as server:
        client = pyservice.Client(operations=["echo", "refuse"], exceptions=["Refused"], endpoint={"port": server.port})
        assert client.echo(a=1) == {"a": 1, "stamped": True}
        with pytest.raises(client.exceptions.Refused):
            client.refuse()


def serve(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyservice", "serve", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=APPS,
        check=False,
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("live_app", "expected MODULE:SERVICE"),
        ("live_app:nothing", "has no attribute 'nothing'"),
        ("live_app:api", "is a dict, not a pyservice.Service"),
    ],
)
def test_serve_says_what_is_wrong_with_the_target(target, message):
    result = serve(target)
    assert result.returncode != 0
    assert message in result.stderr


def test_serve_refuses_a_read_timeout_over_the_worker_timeout():
    result = serve("live_app:service", "--server", "gunicorn", "--timeout", "5", "--read-timeout", "10")
    assert result.returncode != 0
    assert "--read-timeout (10.0) must be below --timeout (5)" in result.stderr


def test_serve_prints_a_banner_naming_what_it_serves_and_how():
    with LiveServer("live_app:service", workers=1, cwd=APPS) as server:
        pass
    output = server.output()
    assert f"live v1 at http://127.0.0.1:{server.port}/api/v1/{{operation}}: echo, slow" in output
    assert "health /health/live, /health/ready" in output
    assert "server pyservice, 1 worker, requests whole within 5s" in output


def test_serve_says_in_one_line_when_the_port_is_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for server in ("pyservice", "gunicorn"):
            result = serve("live_app:service", "--port", str(port), "--server", server)
            assert result.returncode != 0
            assert f"127.0.0.1:{port} is already in use; choose another port with --port" in result.stderr
            assert "Traceback" not in result.stderr


def test_serve_names_a_module_it_cannot_find_without_a_traceback():
    result = serve("no_such_module:service")
    assert result.returncode != 0
    assert "cannot import 'no_such_module'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_shows_the_failing_modules_own_frames_only():
    result = serve("broken_app:service")
    assert result.returncode != 0
    assert "importing 'broken_app' failed" in result.stderr
    assert 'broken_app.py", line 6' in result.stderr
    assert "RuntimeError: the broken app fails at import" in result.stderr
    assert "importlib" not in result.stderr
    assert "_server.py" not in result.stderr


def test_serve_takes_its_port_from_the_environment():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pyservice", "serve", "live_app:service", "--workers", "1"],
        cwd=APPS,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = pyservice.Client(operations=["echo"], endpoint={"port": port})
        assert _eventually(lambda: client.echo(a=1).a) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_an_environment_flag_is_the_default_of_its_option():
    from pyservice._cli import _parser

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORT", "9123")
        patch.setenv("PYSERVICE_REQUEST_TIMEOUT", "2.5")
        patch.setenv("PYSERVICE_SERVER", "gunicorn")
        args = _parser().parse_args(["serve", "app:service"])
    assert (args.port, args.request_timeout, args.server) == (9123, 2.5, "gunicorn")


def test_a_bad_environment_flag_is_refused_naming_the_variable():
    from pyservice._cli import _parser

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSERVICE_WORKERS", "many")
        with pytest.raises(SystemExit):
            _parser().parse_args(["serve", "app:service"])


def test_version_prints_the_installed_version():
    result = subprocess.run(
        [sys.executable, "-m", "pyservice", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"pyservice-core {version('pyservice-core')}"


def test_reload_restarts_the_server_when_a_source_file_changes(tmp_path):
    app = tmp_path / "reload_app.py"
    app.write_text(RELOAD_APP.format(word="before"))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pyservice", "serve", "reload_app:service", "--port", str(port), "--reload"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = pyservice.Client(operations=["word"], endpoint={"port": port})
        assert _eventually(lambda: client.word().word) == "before"
        time.sleep(1.1)  # a later modification time, on file systems that keep whole seconds
        app.write_text(RELOAD_APP.format(word="after"))
        assert _eventually(lambda: client.word().word, until="after") == "after"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert "reload_app.py changed; restarting" in output
    assert process.returncode == 0


RELOAD_APP = """
import pyservice

service = pyservice.Service(operations=["word"])


@service.operation()
def word(request, response, context):
    response.word = "{word}"
"""


def _eventually(read, until=None, seconds=20.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = read()
        except pyservice.TransportError:
            value = None
        if value is not None and (until is None or value == until):
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _raw(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def _post(operation: str, body: bytes) -> bytes:
    return (
        f"POST /api/v1/{operation} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def test_while_every_worker_is_stuck_in_a_call_the_server_answers_probes_and_refuses_calls():
    with LiveServer("live_app:service", workers=2, busy_timeout=0.5, cwd=APPS) as server:
        slow = [threading.Thread(target=_raw, args=(server.port, _post("slow", b'{"seconds": 5}'))) for _ in range(2)]
        for thread in slow:
            thread.start()
            time.sleep(0.2)  # each on a worker of its own: a worker in a call accepts nothing
        time.sleep(1.0)
        started = time.monotonic()
        status, _, body = _raw(server.port, b"GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (status, pyservice._wire.loads(body)["status"]) == (200, "ready")
        status, headers, body = _raw(server.port, _post("echo", b'{"a": 1}'))
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert pyservice._wire.loads(body)["error"]["name"] == "ServiceUnavailable"
        assert time.monotonic() - started < 2.5  # answered now, not after the slow calls
        for thread in slow:
            thread.join()
        status, _, body = _raw(server.port, _post("echo", b'{"a": 1}'))
        assert (status, pyservice._wire.loads(body)) == (200, {"a": 1, "stamped": True})


def test_a_caller_still_sending_an_oversized_body_reads_its_413():
    with (
        LiveServer("live_app:service", workers=1, cwd=APPS) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        # Headers and the start of the body at once, then more of it after the
        # answer was sent. (Over loopback the kernel's reset that a server
        # closing outright provokes arrives after the answer; over a real
        # network it can overtake it, which the server's lingering close avoids.)
        sock.sendall(
            b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n" + b"x" * 200_000
        )
        time.sleep(0.3)
        try:
            sock.sendall(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass  # what matters is what can still be read
        time.sleep(0.3)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert pyservice._wire.loads(body)["error"]["name"] == "BodyTooLarge"


def test_connect_is_refused_and_what_follows_is_not_read_as_a_request():
    with LiveServer("live_app:service", workers=1, cwd=APPS) as server:
        status, _, body = _raw(
            server.port,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n" + _post("echo", b'{"smuggled": true}'),
        )
    assert status == 400
    assert b"smuggled" not in body
    assert pyservice._wire.loads(body)["error"]["name"] == "MalformedRequest"


def send_call(sock: socket.socket, operation: str, body: bytes, timeout: str | None = None) -> None:
    headers = f"Pyservice-Timeout: {timeout}\r\n" if timeout else ""
    sock.sendall(
        f"POST /api/v1/{operation} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def read_answer(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), pyservice._wire.loads(body)


@pytest.mark.parametrize(("timeout", "status"), [("0.4", 504), ("5", 200)])
@pytest.mark.parametrize("connection", ["kept alive", "new"])
def test_a_call_waiting_unread_behind_a_slow_one_has_its_deadline_counted_from_its_arrival(
    connection, timeout, status, tmp_path
):
    # One worker, in a 1 s call: a call sent meanwhile, on a connection the worker holds (kept alive)
    # or on a new one (it waits in the listen queue), is read only after that call. Its deadline
    # counts from when it arrived (the kernel's receive stamps): a 0.4 s deadline has passed by the
    # read (504), a 5 s one has not (answered as usual).
    started = tmp_path / "started"
    with (
        LiveServer("live_app:service", workers=1, cwd=APPS) as server,
        socket.create_connection((server.host, server.port), timeout=10) as slow,
    ):
        waiting = socket.create_connection((server.host, server.port), timeout=10) if connection == "new" else None
        kept = socket.create_connection((server.host, server.port), timeout=10)
        send_call(kept, "echo", b"{}")
        assert read_answer(kept)[0] == 200  # the worker holds this connection now
        send_call(slow, "slow", pyservice._wire.encode({"seconds": 1.0, "started": str(started)}))
        while not started.exists():
            time.sleep(0.01)
        time.sleep(0.1)
        if waiting is None:
            waiting = kept
        else:
            kept.close()
        with waiting:
            sent = time.monotonic()
            send_call(waiting, "echo", b'{"a": 1}', timeout=timeout)
            answered, body = read_answer(waiting)
            waited = time.monotonic() - sent
        assert read_answer(slow)[0] == 200
    assert answered == status, body
    if status == 504:
        assert body["error"]["name"] == "DeadlineExceeded"
    assert waited > 0.5  # it did wait behind the slow call
