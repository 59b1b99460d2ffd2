"""Raw HTTP for the slow-peer tests and measurements: peers that stall, trickle or idle, and timed calls.

Plain sockets, so that a peer can do what no HTTP client library would:
stop halfway through its body, send one byte at a time, never read.
"""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyservice.testing import LiveServer


def request_bytes(operation: str = "echo", body: bytes = b'{"a": 1}', *, length: int | None = None) -> bytes:
    length = len(body) if length is None else length
    return b"POST /api/v1/%s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        operation.encode(),
        length,
        body,
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, str]:
        """The protocol's error shape, checked; its ``error`` object."""
        assert self.headers.get("content-type") == "application/json", (self.status, self.headers, self.body[:200])
        payload = json.loads(self.body)
        assert set(payload) == {"error"}, payload
        error = payload["error"]
        assert error["kind"] == "protocol", error
        assert isinstance(error["name"], str), error
        assert isinstance(error["message"], str), error
        return error


def parse(data: bytes, *, alone: bool = False) -> Answer:
    """One answer from the bytes read until the server closed, framed by its Content-Length.

    ``alone``: nothing may follow it (one request, one answer).
    """
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines[0].startswith("HTTP/") else 0
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", len(rest)))
    if alone:
        assert rest[length:] == b"", f"more than one answer to one request: {data[:600]!r}"
    return Answer(status, headers, rest[:length])


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            # The server answered before reading all that was sent, and closed:
            # the kernel resets the connection after the answer.
            break
        if not chunk:
            break
        data += chunk
    return data


def read_answer(sock: socket.socket) -> Answer:
    """Read one answer, framed as a client would frame it, leaving the connection open."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def exchange(server: LiveServer, data: bytes, *, timeout: float = 10.0) -> Answer:
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def call(server: LiveServer, operation: str = "echo", payload: dict | None = None, timeout: float = 10.0):
    """A normal call on a new connection: (status, decoded body, seconds)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request(
            "POST", f"/api/v1/{operation}", json.dumps(payload or {}), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, json.loads(body), time.monotonic() - started


class NormalCalls:
    """Normal calls made one after another in a thread, each timed, until stopped (or ``limit`` calls)."""

    def __init__(self, server: LiveServer, interval: float = 0.05, limit: int = 400, timeout: float = 10.0) -> None:
        self.server = server
        self.interval = interval
        self.limit = limit
        self.timeout = timeout
        self.results: list[tuple[int | str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.results) < self.limit:
            started = time.monotonic()
            try:
                status, _, seconds = call(self.server, "echo", {"normal": True}, timeout=self.timeout)
            except OSError as exc:  # counted, and the test fails on it
                status, seconds = repr(exc), time.monotonic() - started
            self.results.append((status, seconds))
            self._stop.wait(self.interval)

    def __enter__(self) -> NormalCalls:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check(self, bound: float) -> None:
        """Every call answered 200, none slower than ``bound`` seconds."""
        assert len(self.results) >= 5, self.results
        statuses = {status for status, _ in self.results}
        assert statuses == {200}, [result for result in self.results if result[0] != 200][:10]
        slowest = max(seconds for _, seconds in self.results)
        assert slowest < bound, f"a normal call took {slowest:.2f}s"


@dataclass
class Peer:
    sock: socket.socket
    sent_at: float
    data: bytes = b""
    answered_at: float = 0.0
    trickle: bytes = field(default=b"", repr=False)


def connect_many(server: LiveServer, count: int) -> list[socket.socket]:
    return [socket.create_connection((server.host, server.port), timeout=10) for _ in range(count)]


def stall(server: LiveServer, count: int) -> list[Peer]:
    """Connections that send their headers and part of the body, then nothing."""
    peers = []
    for sock in connect_many(server, count):
        sock.sendall(request_bytes(body=b'{"a": 1', length=100))
        peers.append(Peer(sock, time.monotonic()))
    return peers


def idle(server: LiveServer, count: int) -> list[socket.socket]:
    """Keep-alive connections that made one call each and keep quiet.

    As any HTTP client does, a connection whose answer said ``Connection:
    close`` (gunicorn's sync workers) is closed, and not returned.
    """
    socks = []
    for _ in range(count):
        # One after the other: a sync worker would wait on a connection that has not sent yet.
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(request_bytes())
        answer = read_answer(sock)
        assert answer.status == 200
        if answer.headers.get("connection", "").lower() == "close":
            sock.close()
        else:
            socks.append(sock)
    return socks


def trickling(server: LiveServer, count: int, length: int = 60) -> list[Peer]:
    """Connections that send their headers, then their body one byte at a time (see :func:`await_answers`)."""
    body = b'{"t": "' + b"x" * (length - 10) + b'"}'
    peers = []
    for sock in connect_many(server, count):
        sock.sendall(request_bytes(body=b"", length=len(body)))
        peers.append(Peer(sock, time.monotonic(), trickle=body))
    return peers


def await_answers(peers: list[Peer], seconds: float, *, drip: float = 0.5) -> None:
    """Read every peer's answer until the server closes it, for at most ``seconds``.

    A trickling peer sends its next byte every ``drip`` seconds until it is answered.
    """
    selector = selectors.DefaultSelector()
    for peer in peers:
        peer.sock.setblocking(False)
        selector.register(peer.sock, selectors.EVENT_READ, peer)
    open_count = len(peers)
    deadline = time.monotonic() + seconds
    next_drip = time.monotonic() + drip
    while open_count and time.monotonic() < deadline:
        if time.monotonic() >= next_drip:
            next_drip += drip
            for peer in peers:
                if peer.trickle and not peer.answered_at:
                    try:
                        peer.sock.send(peer.trickle[:1])
                    except OSError:
                        continue  # answered and closed: its answer is read below
                    peer.trickle = peer.trickle[1:]
        for key, _ in selector.select(timeout=max(0.0, min(next_drip, deadline) - time.monotonic())):
            peer = key.data
            try:
                chunk = peer.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                peer.data += chunk
                if not peer.answered_at:
                    peer.answered_at = time.monotonic()
            else:
                selector.unregister(peer.sock)
                open_count -= 1
    selector.close()


def close_all(socks) -> None:
    for sock in socks:
        sock.close()


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def eventually(check, seconds: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of ``sock`` (1 established, 7 closed, 8 close-wait)."""
    return struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]
