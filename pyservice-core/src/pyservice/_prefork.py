"""The arbiter of pyservice's own server: one listening socket, forked workers, signals.

The service is imported and compiled once, here, and the workers are forked
from it, so a mistake fails once at start-up and the workers share the
loaded code. The arbiter restarts a worker that dies, and on SIGTERM or
SIGINT asks each worker to stop (stop accepting, close idle connections,
refuse half-read requests with 503), then kills what is left after the
graceful timeout: whatever its peers do, the server is gone by then.

A worker runs one call at a time. When every worker has been in its call for
longer than the busy timeout (a database that froze, say), the arbiter
accepts new connections itself: it answers health probes and other GETs with
the service it loaded (so readiness reports the outage instead of queueing
behind the stuck calls), and calls with ``503 ServiceUnavailable`` and
``Retry-After``, until a worker is free again. Workers say since when they are
in a call through one shared ``double`` each.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ._http import Connection, Limits, Worker, run_worker
from ._owner import stop_started
from ._wire import JSON_HEADER, STATUS_LINES, error_body

if TYPE_CHECKING:
    from .typing import WSGIApplication

__all__ = ["bind", "raise_open_files_limit", "run_arbiter"]

logger = logging.getLogger("pyservice.server")

#: A worker that dies sooner than this after its start is restarted only after the same delay.
_QUICK_DEATH = 1.0
#: Connections the arbiter answers at once while every worker is busy; more are closed.
_MAX_ARBITER_CONNECTIONS = 32


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; returns the limit.

    Each connection is a file; the usual soft limit (1024) would cap a
    worker's connections far below what the event loop can hold.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # pragma: no cover - a container may refuse
            return soft
        return hard
    return soft


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """Open the listening socket.

    Raises:
        SystemExit: the address is in use or cannot be bound, in one line
            that names the flag to change.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"pyservice: {where} is already in use; choose another port with --port") from None
        raise SystemExit(f"pyservice: cannot listen on {where}: {exc.strerror}; check --host and --port") from None
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


class _Arbiter:
    def __init__(
        self,
        app: WSGIApplication,
        sock: socket.socket,
        workers: int,
        limits: Limits,
        graceful_timeout: float,
        busy_timeout: float,
    ) -> None:
        self.app = app
        self.sock = sock
        self.count = workers
        self.limits = limits
        self.graceful_timeout = graceful_timeout
        self.busy_timeout = busy_timeout
        self.children: dict[int, tuple[int, float]] = {}  # pid: (slot, start time)
        self.stop_signal: int | None = None
        # One double per worker, shared with the forked workers (MAP_SHARED | MAP_ANONYMOUS).
        self._shared = mmap.mmap(-1, 8 * workers)
        self.busy_since = memoryview(self._shared).cast("d")
        self.answering = threading.BoundedSemaphore(_MAX_ARBITER_CONNECTIONS)

    def spawn(self, slot: int) -> None:
        self.busy_since[slot] = 0.0
        arbiter = os.getpid()  # read before the fork: the child may outlive it from its first instant
        pid = os.fork()
        if pid:
            self.children[pid] = (slot, time.monotonic())
            logger.info("worker %d started", pid)
            return
        # The child: its own signal handling, then serve until told to stop.
        status = 0
        try:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            drain = max(0.1, self.graceful_timeout - 0.5)  # the worker stops before the arbiter kills it
            run_worker(self.app, self.sock, self.limits, self.count, drain, self.busy_since, slot, arbiter)
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
            status = 1
        finally:
            stop_started()  # each plugin's per-worker stop: os._exit below skips atexit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def run(self) -> None:
        def request_stop(signum: int, frame: object) -> None:
            self.stop_signal = signum

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        for slot in range(self.count):
            self.spawn(slot)
        while self.stop_signal is None:
            self.reap_and_replace()
            if self.every_worker_stuck():
                self.answer_one()
            else:
                time.sleep(0.1)
        self.stop()

    def every_worker_stuck(self) -> bool:
        now = time.monotonic()
        return all(0.0 < since < now - self.busy_timeout for since in self.busy_since)

    def answer_one(self) -> None:
        """Accept one connection, if one waits, and answer it from a thread of its own."""
        try:
            ready, _, _ = select.select([self.sock], [], [], 0.1)
        except InterruptedError:  # pragma: no cover - a signal; the loop looks again
            return
        if not ready:
            return
        try:
            client, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # a worker took it
        if not self.answering.acquire(blocking=False):
            client.close()
            return
        thread = threading.Thread(target=self._answer, args=(client,), daemon=True, name="pyservice-arbiter")
        thread.start()

    def _answer(self, client: socket.socket) -> None:
        try:
            answer_directly(client, _busy_answers(self.app, self.busy_timeout), self.limits)
        finally:
            self.answering.release()

    def reap_and_replace(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # pragma: no cover - every child already reaped
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None or self.stop_signal is not None:
                continue
            slot, started = child
            code = os.waitstatus_to_exitcode(status)
            logger.warning("worker %d exited (%s); starting another", pid, _describe_exit(code))
            if time.monotonic() - started < _QUICK_DEATH:
                time.sleep(_QUICK_DEATH)  # a worker that cannot start must not become a fork loop
            self.spawn(slot)

    def stop(self) -> None:
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout
        while self.children and time.monotonic() < deadline:
            self.reap_and_replace()
            time.sleep(0.05)
        for pid in list(self.children):
            logger.warning("worker %d did not stop within %gs; killing it", pid, self.graceful_timeout)
            _signal(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:  # pragma: no cover
                pass
        self.children.clear()
        self.sock.close()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # pragma: no cover - it exited meanwhile
        pass


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def run_arbiter(
    app: WSGIApplication,
    sock: socket.socket,
    *,
    workers: int,
    limits: Limits,
    graceful_timeout: float,
    busy_timeout: float = 2.0,
) -> None:
    """Fork ``workers`` processes serving ``app`` on ``sock`` and supervise them until SIGTERM or SIGINT.

    Returns once every worker has stopped: within ``graceful_timeout``
    seconds of the signal (and a moment to reap them). While every worker
    has been in a call for over ``busy_timeout`` seconds, the arbiter answers
    new connections itself (see the module's docstring).
    """
    _Arbiter(app, sock, workers, limits, graceful_timeout, busy_timeout).run()


def _busy_answers(app: WSGIApplication, busy_timeout: float) -> WSGIApplication:
    # GETs are the health probes and the OpenAPI document: cheap, and the
    # readiness checks bound themselves. A call could be as stuck as the others.
    refusal = error_body(
        "protocol",
        "ServiceUnavailable",
        f"every worker has been in a call for over {busy_timeout:g}s; call again shortly",
    )
    headers = [JSON_HEADER, ("Content-Length", str(len(refusal))), ("Retry-After", "1")]

    def answer(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            return app(environ, start_response)
        start_response(STATUS_LINES[503], headers)
        return [refusal]

    return answer


class _SocketTransport:
    """Just enough of an asyncio transport for a Connection over a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.sock.sendall(data)

    def close(self) -> None:
        self.closed = True

    abort = close

    def can_write_eof(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> Any:
        return self.sock.getpeername() if name == "peername" else None

    def pause_reading(self) -> None:  # pragma: no cover - writes block instead
        pass

    resume_reading = pause_reading


def answer_directly(client: socket.socket, app: WSGIApplication, limits: Limits) -> None:
    """Read one request from a blocking ``client`` socket within the request deadline, answer it, close.

    The same parsing, limits and answers as a worker's, without its loop.
    """
    worker = Worker(app, limits)
    transport = _SocketTransport(client)
    connection = Connection(worker)
    deadline = time.monotonic() + limits.request_timeout
    try:
        worker.now = time.monotonic()
        worker.date_line = _date_line()
        connection.connection_made(transport)  # type: ignore[arg-type]
        # Its one answer says "Connection: close": a keep-alive caller would
        # otherwise send its next call into the socket closed below.
        worker.stopping = True
        while not transport.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                worker.now = time.monotonic()
                connection.sweep(worker.now + limits.request_timeout)  # answers 408
                break
            client.settimeout(left)
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            worker.now = time.monotonic()
            connection.data_received(data)
            if connection._response is not None:
                break  # answered; the arbiter keeps no connection alive
    except OSError:
        pass
    finally:
        client.close()


def _date_line() -> bytes:
    from email.utils import formatdate

    return f"Date: {formatdate(usegmt=True)}\r\n\r\n".encode("latin-1")
