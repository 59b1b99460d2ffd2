"""pyservice's own HTTP/1.1 server: one connection, read whole, answered in the worker's loop.

Each worker process runs an event loop (uvloop where installed) and parses
requests with httptools (llhttp). A request is buffered whole, headers and
body, before the WSGI application sees it, so a caller that stalls or
trickles its body holds no thread and no worker: it holds a few hundred bytes
of buffer until its whole-request deadline, when it is answered 408. Then the
application is called inline, in the loop's thread, as a sync worker would
call it: no thread hand-off, which is why this serves more requests per
second than a server that runs the application on a thread pool (measured in
docs/deploying.md).

Nothing here arms a timer per request: a sweep every quarter of a second
closes what has overrun its deadline (a request still arriving, an idle
keep-alive connection) and refreshes the ``Date`` header.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_to_bytes

import httptools

from . import _arrival
from ._wire import JSON_HEADER, STATUS_LINES, error_body

if TYPE_CHECKING:
    from .typing import WSGIApplication

__all__ = ["Limits", "Worker"]

logger = logging.getLogger("pyservice.server")

#: How often the sweep looks for overrun deadlines, in seconds: the precision of every timeout here.
SWEEP_INTERVAL = 0.25
#: Seconds a connection refused mid-request may go on sending (dropped) before it is cut off.
LINGER = 2.0
#: A call longer than this, in seconds, may have kept others waiting unread:
#: after it, the worker asks the kernel when they arrived (see _arrival).
LONG_CALL = 0.1
#: For this long after a long call, a new connection (it waited in the listen
#: queue meanwhile) is asked when its first request arrived, too.
CATCHING_UP = 1.0


@dataclass(frozen=True)
class Limits:
    """What the server allows each connection.

    Attributes:
        request_timeout: seconds from a request's first byte to its last
            (headers and whole body); then it is answered 408 ``RequestTimeout``.
        keepalive_timeout: seconds an idle keep-alive connection is kept.
        max_body_size: the largest body read, in bytes; a larger one is
            answered 413 ``BodyTooLarge`` without reading it.
        max_header_size: the largest request line and headers, in bytes;
            larger is answered 431.
        max_header_count: the most header names a request may have; more
            is answered 431 (a name repeated counts once, its lines count
            towards ``max_header_size``).
        max_connections: open connections per worker; more are answered
            503 and closed.
    """

    request_timeout: float = 5.0
    keepalive_timeout: float = 30.0
    max_body_size: int = 1024 * 1024
    max_header_size: int = 64 * 1024
    max_header_count: int = 100
    max_connections: int = 10_000


class BusyMarks(Protocol):
    """Where workers write since when they are in a call: one float per worker slot."""

    def __getitem__(self, slot: int, /) -> float: ...

    def __setitem__(self, slot: int, since: float, /) -> None: ...


class _Refused(Exception):
    """Raised from a parser callback: answer this and close the connection."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


def _refusal_bytes(status: int, name: str, message: str, date: bytes) -> bytes:
    body = error_body("protocol", name, message)
    head = (
        f"HTTP/1.1 {STATUS_LINES[status]}\r\n{JSON_HEADER[0]}: {JSON_HEADER[1]}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    )
    return head.encode("latin-1") + date + body  # date ends the head: "Date: ...\r\n\r\n"


# Header names seen by this worker, to their environ keys. Bounded, because a
# caller chooses the names: past the bound, keys are computed each time.
_ENVIRON_KEYS: dict[bytes, str] = {b"content-length": "CONTENT_LENGTH", b"content-type": "CONTENT_TYPE"}
_MAX_ENVIRON_KEYS = 512


def _environ_key(name: bytes) -> str:
    key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < _MAX_ENVIRON_KEYS:
        _ENVIRON_KEYS[name.lower()] = key
    return key


class Connection(asyncio.Protocol):
    """One client connection: parse, buffer, answer in order."""

    __slots__ = (
        "_body",
        "_body_size",
        "_environ",
        "_head_read",
        "_header_size",
        "_in_head",
        "_response",
        "_url",
        "arrived",
        "closed_at",
        "closing",
        "idle_since",
        "lingering",
        "parser",
        "started",
        "transport",
        "worker",
    )

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.parser = httptools.HttpRequestParser(self)
        self._environ: dict[str, Any] = {}
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._header_size = 0
        self._in_head = False  # a request has begun and its headers have not all arrived
        self._head_read = 0  # bytes of that head read after the read in which it began
        self._response: tuple[str, list[tuple[str, str]]] | None = None
        self.started = 0.0  # loop time of the current request's first byte; 0 between requests
        self.arrived = 0.0  # when the kernel says the request read next arrived, if it was read late
        self.idle_since = 0.0
        self.closing = False
        self.lingering = False
        self.closed_at = 0.0

    # -- asyncio ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        worker = self.worker
        self.idle_since = worker.now
        worker.connections.add(self)
        if worker.stamps and worker.stall_ended and monotonic() - worker.stall_ended < CATCHING_UP:
            self.note_arrival(worker.stall_began)
        if len(worker.connections) > worker.limits.max_connections or worker.stopping:
            self._refuse(503, "ServiceUnavailable", "the server is at its connection limit or stopping")

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.connections.discard(self)
        self.closing = True

    def data_received(self, data: bytes) -> None:
        while not self.closing:
            try:
                self.parser.feed_data(data)
            except _Refused as refused:
                self._refuse(refused.status, refused.name, refused.message)
            except httptools.HttpParserCallbackError as exc:
                cause = exc.__context__
                if isinstance(cause, _Refused):
                    self._refuse(cause.status, cause.name, cause.message)
                else:  # pragma: no cover - our callbacks raise nothing else
                    logger.error("error while reading a request", exc_info=cause)
                    self._refuse(500, "InternalError", "internal error")
            except httptools.HttpParserUpgrade as upgrade:
                # An Upgrade request without a body has been answered over
                # HTTP/1.1, as RFC 9110 lets a server do (one with a body is
                # refused in on_headers_complete). llhttp stops at its end and
                # would read no more: what follows is the next request.
                self.parser = httptools.HttpRequestParser(self)
                data = data[upgrade.args[0] :]
                if data:
                    continue
            except httptools.HttpParserError as exc:
                self._refuse(400, "MalformedRequest", f"the request is not valid HTTP/1.1 ({exc})")
            if self._in_head and not self.closing:
                self._count_head(len(data))
            return

    def _count_head(self, size: int) -> None:
        # httptools keeps a header's name and value to itself until both have
        # ended, so on_header cannot bound a header that never ends: the bytes
        # of a head that spans reads are counted here. The read in which it
        # began is not counted (earlier requests may share it), so a head holds
        # at most the limit and one read.
        if self._head_read < 0:
            self._head_read = 0
            return
        self._head_read += size
        limit = self.worker.limits.max_header_size
        if self._head_read > limit:
            self._refuse(431, "HeadersTooLarge", f"the request's headers are limited to {limit} bytes")

    def eof_received(self) -> bool | None:
        # The caller closed its side: a request it had begun will never end.
        if self.lingering:
            self.transport.close()
        elif self.started:
            self._refuse(400, "MalformedRequest", "the connection was closed before the request arrived whole")
        return None  # close our side too, once the answers are written

    def pause_writing(self) -> None:
        # The caller does not read its answers: stop reading its requests
        # until it does, so that pipelined calls cannot pile up answers here.
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    # -- httptools callbacks --------------------------------------------------

    def on_message_begin(self) -> None:
        # The loop's own clock, not the sweep's: the deadline must not fire early.
        self.started = self.worker.clock()
        self.idle_since = 0.0
        self._environ = {}
        self._url = b""
        self._header_size = 0
        self._in_head = True
        self._head_read = -1  # this read is not counted: see _count_head

    def on_url(self, url: bytes) -> None:
        # The URL may come in pieces when its packet is split.
        self._url += url
        self._header_size += len(url)
        if self._header_size > self.worker.limits.max_header_size:
            raise _Refused(414, "URITooLong", "the request line is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_size += len(name) + len(value) + 4  # and ": " and CRLF
        if self._header_size > self.worker.limits.max_header_size:
            limit = self.worker.limits.max_header_size
            raise _Refused(431, "HeadersTooLarge", f"the request's headers are limited to {limit} bytes")
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = _ENVIRON_KEYS.get(name.lower()) or _environ_key(name)
        environ = self._environ
        text = value.decode("latin-1")
        if key in environ:
            # Repeated headers are joined, as CGI does; the core refuses a repeated length.
            text = f"{environ[key]},{text}"
        environ[key] = text

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self.worker.limits
        environ = self._environ  # one key per header name, so far
        if len(environ) > limits.max_header_count:
            count = limits.max_header_count
            raise _Refused(431, "HeadersTooLarge", f"the request's headers are limited to {count} names")
        if self.parser.get_method() == b"CONNECT":
            # What follows a CONNECT is a tunnel's bytes, never a next request.
            raise _Refused(400, "MalformedRequest", "CONNECT is not served: this is not a proxy")
        length = environ.get("CONTENT_LENGTH")
        if (
            "HTTP_UPGRADE" in environ
            and self.parser.should_upgrade()
            and (length not in (None, "0") or "HTTP_TRANSFER_ENCODING" in environ)
        ):
            # llhttp leaves an Upgrade request's body unread, as the new
            # protocol's first bytes; this server speaks only HTTP/1.1.
            raise _Refused(400, "MalformedRequest", "an Upgrade request with a body is not served; send it without")
        limit = limits.max_body_size
        if length is not None and length.isdigit() and int(length) > limit:
            raise _Refused(413, "BodyTooLarge", f"the body is limited to {limit} bytes, Content-Length says {length}")
        self._body = []
        self._body_size = 0
        expect = environ.get("HTTP_EXPECT")
        if expect is not None and expect.lower() == "100-continue" and self.parser.get_http_version() == "1.1":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        size = self._body_size = self._body_size + len(body)
        if size > self.worker.limits.max_body_size:
            raise _Refused(413, "BodyTooLarge", f"the body is limited to {self.worker.limits.max_body_size} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.started = 0.0
        worker = self.worker
        parser = self.parser
        environ = self._environ
        environ.update(worker.base_environ)
        environ["REQUEST_METHOD"] = method = parser.get_method().decode("latin-1")
        path, _, query = self._url.partition(b"?")
        if b"%" in path:
            path = unquote_to_bytes(path)
        environ["PATH_INFO"] = path.decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        version = parser.get_http_version()
        environ["SERVER_PROTOCOL"] = "HTTP/1.1" if version == "1.1" else f"HTTP/{version}"
        peer = self.transport.get_extra_info("peername")
        if peer:
            environ["REMOTE_ADDR"] = peer[0]
            environ["REMOTE_PORT"] = str(peer[1])
        body = self._body
        environ["wsgi.input"] = io.BytesIO(body[0] if len(body) == 1 else b"".join(body))
        self._body = []
        if self.arrived:
            environ[_arrival.ENVIRON_KEY] = self.arrived
            self.arrived = 0.0
        keep_alive = parser.should_keep_alive() and not worker.stopping
        self._answer(environ, method == "HEAD", keep_alive)
        if keep_alive:
            self.idle_since = worker.now
        else:
            self._close()

    # -- answering ------------------------------------------------------------

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        """PEP 3333's ``start_response``; the answer is written once the application returns."""
        self._response = (status, headers)
        return self._write_refused

    @staticmethod
    def _write_refused(data: bytes) -> None:
        raise RuntimeError("the write() callable of start_response is not supported; return the body instead")

    def _answer(self, environ: dict[str, Any], head: bool, keep_alive: bool) -> None:
        self._response = None
        worker = self.worker
        # Tells the arbiter since when this worker is in a call (see _prefork).
        began = worker.busy_since[worker.slot] = monotonic()
        try:
            result = worker.app(environ, self.start_response)
            try:
                body = result[0] if type(result) is list and len(result) == 1 else b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            response = self._response
            if response is None:
                raise RuntimeError("the application returned without calling start_response")
        except Exception:
            logger.exception("the application failed on %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            body = error_body("internal", "InternalError", "internal error")
            response = (STATUS_LINES[500], [JSON_HEADER, ("Content-Length", str(len(body)))])
        worker.busy_since[worker.slot] = 0.0
        if worker.stamps and monotonic() - began > LONG_CALL:
            worker.note_arrivals(self, began)
        status, headers = response
        lines = ["HTTP/1.1 ", status, "\r\n"]
        length_set = False
        for name, value in headers:
            lines += (name, ": ", value, "\r\n")
            if not length_set and (name == "Content-Length" or name.lower() == "content-length"):
                length_set = True
        if not length_set:
            lines += ("Content-Length: ", str(len(body)), "\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        head_bytes = "".join(lines).encode("latin-1") + self.worker.date_line
        self.transport.write(head_bytes if head else head_bytes + body)

    def note_arrival(self, unstamped: float) -> None:
        """Learn from the kernel when the bytes waiting unread on this connection arrived.

        Bytes the kernel did not stamp are taken to have arrived at ``unstamped``.
        """
        if self.closing or self.arrived:
            return  # the earlier stamp stands: the request began then
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            self.arrived = _arrival.peek_arrival(sock, unstamped)

    def _refuse(self, status: int, name: str, message: str) -> None:
        """Answer in the protocol's error shape and close the connection."""
        if self.closing:
            return
        midway = self.started
        self.started = 0.0
        self._in_head = False
        self.transport.write(_refusal_bytes(status, name, message, self.worker.date_line))
        if midway and self.transport.can_write_eof():
            # The caller may still be sending: closing now would make the
            # kernel answer its next bytes with a reset, which can destroy our
            # answer before it is read. Close our side only, and drop what it
            # still sends until it closes (or LINGER later, in the sweep).
            self.closing = self.lingering = True
            self.closed_at = self.worker.now
            self.transport.write_eof()
        else:
            self._close()

    def _close(self) -> None:
        self.closing = True
        self.closed_at = self.worker.now
        self.transport.close()

    # -- the sweep ------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """Close this connection if it has overrun a deadline."""
        limits = self.worker.limits
        if self.closing:
            # Closed, but its answers are not all written (the peer does not
            # read them), or lingering: cut off after a while, so that a peer
            # cannot hold the buffers and the file for ever.
            if now - self.closed_at > (LINGER if self.lingering else limits.keepalive_timeout):
                self.transport.abort()
        elif self.started and now - self.started > limits.request_timeout:
            self._refuse(408, "RequestTimeout", f"the request did not arrive whole within {limits.request_timeout:g}s")
        elif self.idle_since and now - self.idle_since > limits.keepalive_timeout:
            self._close()

    def shut_down(self) -> None:
        """The worker is stopping: close between requests, refuse a request half-read."""
        if self.started:
            self._refuse(503, "ServiceUnavailable", "the server is stopping; call again")
        elif not self.closing:
            self._close()


class Worker:
    """One worker process's server: its loop, its connections, its sweep.

    Args:
        app: the WSGI application.
        limits: what each connection is allowed.
        workers: how many worker processes serve the same socket (for
            ``wsgi.multiprocess``).
        busy_since: where this worker writes the ``time.monotonic()`` at
            which its current call began (0 between calls): memory shared
            with the arbiter, one slot per worker.
        slot: this worker's slot in ``busy_since``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        limits: Limits,
        workers: int = 1,
        busy_since: BusyMarks | None = None,
        slot: int = 0,
    ) -> None:
        self.app = app
        self.limits = limits
        self.busy_since: BusyMarks = [0.0] if busy_since is None else busy_since
        self.slot = slot
        self.connections: set[Connection] = set()
        self.stopping = False
        self.parent = 0  # the arbiter's pid, in a forked worker
        self.now = 0.0
        #: Whether accepted connections carry the kernel's receive stamps (see _arrival).
        self.stamps = False
        #: When the last long call began and ended (time.monotonic()), 0 before any.
        self.stall_began = self.stall_ended = 0.0
        #: The clock of deadlines: the loop's, once serving.
        self.clock: Callable[[], float] = monotonic
        self.date_line = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self.base_environ: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": "",
            "SERVER_PORT": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": workers > 1,
            "wsgi.run_once": False,
        }

    async def serve(self, sock: Any, graceful_timeout: float) -> None:
        """Serve connections from the listening ``sock`` until ``stop``, then drain."""
        loop = self._loop = asyncio.get_running_loop()
        self.clock = loop.time
        self._stopped = loop.create_future()
        host, port = sock.getsockname()[:2]
        self.base_environ["SERVER_NAME"] = host
        self.base_environ["SERVER_PORT"] = str(port)
        self.stamps = _arrival.enable(sock)
        self._tick()
        # One connection per wake-up, not asyncio's accept-all: a worker busy
        # in a call is not polling, so the next connection goes to a free one.
        loop.add_reader(sock.fileno(), self._accept, sock)
        await self._stopped
        loop.remove_reader(sock.fileno())
        for connection in list(self.connections):
            connection.shut_down()
        # Answers already written are flushed by transport.close(); a caller
        # that does not read them is cut off at the graceful timeout.
        deadline = loop.time() + graceful_timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.transport.abort()

    def _accept(self, sock: Any) -> None:
        try:
            client, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker took it
        except OSError as exc:
            # Out of files, say: keep serving the connections already open.
            logger.warning("could not accept a connection: %s", exc)
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._loop is not None
        self._loop.create_task(self._loop.connect_accepted_socket(lambda: Connection(self), client))

    def note_arrivals(self, answered: Connection, began: float) -> None:
        """After a long call, begun at ``began``: note when the calls waiting on other connections arrived.

        Their deadlines count from then, not from when this worker got to
        read them (the core reads the stamp from the environ).
        """
        self.stall_began = began
        self.stall_ended = monotonic()
        for connection in self.connections:
            if connection is not answered:
                connection.note_arrival(began)

    def stop(self) -> None:
        """Stop accepting and close every connection between requests (SIGTERM)."""
        self.stopping = True
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = self.now = loop.time()
        if self.parent and os.getppid() != self.parent and not self.stopping:
            # The arbiter is gone (killed, say): nobody would stop or replace
            # this worker, which would serve the port for ever.
            logger.warning("worker %d: the arbiter %d is gone; stopping", os.getpid(), self.parent)
            self.stop()
        self.date_line = f"Date: {formatdate(usegmt=True)}\r\n\r\n".encode("latin-1")
        for connection in list(self.connections):
            connection.sweep(now)
        loop.call_later(SWEEP_INTERVAL, self._tick)


def run_worker(
    app: WSGIApplication,
    sock: Any,
    limits: Limits,
    workers: int,
    graceful_timeout: float,
    busy_since: BusyMarks | None = None,
    slot: int = 0,
    parent: int = 0,
) -> None:
    """A worker process's main: serve ``sock`` until SIGTERM or SIGINT, then drain.

    It also stops when its ``parent`` (the arbiter's pid, read before the
    fork; by default the parent it has now) is gone.
    """
    import signal

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not built for every platform
        new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    else:
        new_loop = uvloop.new_event_loop
    loop = new_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(app, limits, workers, busy_since, slot)
    worker.parent = parent or os.getppid()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    try:
        loop.run_until_complete(worker.serve(sock, graceful_timeout))
    finally:
        loop.close()
