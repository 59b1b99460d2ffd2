"""The arbiter of pyservice's own server: one listening socket, forked workers, signals.

The service is imported and compiled once, here, and the workers are forked
from it, so a mistake fails once at start-up and the workers share the
loaded code. The arbiter restarts a worker that dies, and on SIGTERM or
SIGINT asks each worker to stop (stop accepting, close idle connections,
refuse half-read requests with 503), then kills what is left after the
graceful timeout: whatever its peers do, the server is gone by then.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

from ._http import Limits, run_worker

if TYPE_CHECKING:
    from .typing import WSGIApplication

__all__ = ["bind", "raise_open_files_limit", "run_arbiter"]

logger = logging.getLogger("pyservice.server")

#: A worker that dies sooner than this after its start is restarted only after the same delay.
_QUICK_DEATH = 1.0


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
        self, app: WSGIApplication, sock: socket.socket, workers: int, limits: Limits, graceful_timeout: float
    ) -> None:
        self.app = app
        self.sock = sock
        self.count = workers
        self.limits = limits
        self.graceful_timeout = graceful_timeout
        self.children: dict[int, float] = {}  # pid: start time
        self.stop_signal: int | None = None

    def spawn(self) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = time.monotonic()
            print(f"pyservice: worker {pid} started", file=sys.stderr, flush=True)
            return
        # The child: its own signal handling, then serve until told to stop.
        status = 0
        try:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            run_worker(self.app, self.sock, self.limits, self.count, self.graceful_timeout)
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def run(self) -> None:
        def request_stop(signum: int, frame: object) -> None:
            self.stop_signal = signum

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        for _ in range(self.count):
            self.spawn()
        while self.stop_signal is None:
            self.reap_and_replace()
            time.sleep(0.1)
        self.stop()

    def reap_and_replace(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # pragma: no cover - every child already reaped
                return
            if pid == 0:
                return
            started = self.children.pop(pid, None)
            if started is None or self.stop_signal is not None:
                continue
            code = os.waitstatus_to_exitcode(status)
            logger.warning("worker %d exited (%s); starting another", pid, _describe_exit(code))
            if time.monotonic() - started < _QUICK_DEATH:
                time.sleep(_QUICK_DEATH)  # a worker that cannot start must not become a fork loop
            self.spawn()

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
    app: WSGIApplication, sock: socket.socket, *, workers: int, limits: Limits, graceful_timeout: float
) -> None:
    """Fork ``workers`` processes serving ``app`` on ``sock`` and supervise them until SIGTERM or SIGINT.

    Returns once every worker has stopped: within ``graceful_timeout``
    seconds of the signal (and a moment to reap them).
    """
    _Arbiter(app, sock, workers, limits, graceful_timeout).run()
