"""Health endpoints: liveness, and readiness that plugins contribute checks to.

Both are answered on GET and HEAD without running any operation's chain.
Readiness runs every check at once, each in its own daemon thread, and
waits at most the api's ``health.timeout``: a backend that hangs makes the
service not ready, it never hangs the probe. A check still running from an
earlier probe is waited for again rather than started twice, so a hung
backend holds at most one thread per check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ._wire import JSON_HEADER, STATUS_LINES, dumps, error_body

if TYPE_CHECKING:
    from .typing import StartResponse, WSGIEnvironment

__all__ = ["ReadinessChecks", "answer_get", "live_endpoint", "ready_endpoint"]

logger = logging.getLogger("pyservice")

#: A readiness check: returns None when ready, else a reason (or raises).
ReadinessCheck = Callable[[], object]
#: A GET endpoint: ``(environ, start_response) -> body`` without the chain.
GetEndpoint = Callable[["WSGIEnvironment", "StartResponse"], list[bytes]]


class ReadinessChecks:
    """The readiness checks of one service, run with a time limit.

    Args:
        timeout: seconds each check may take.
        debug: put the text of a check's exception in its reason (else only
            the exception's type: a message may name a host or a user).
    """

    def __init__(self, timeout: float, *, debug: bool = False) -> None:
        self.timeout = timeout
        self.debug = debug
        self.checks: dict[str, ReadinessCheck] = {}
        self._running: dict[str, Future[object]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Register ``check`` under ``name``.

        Raises:
            ValueError: the name is taken, or the check is not callable.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a readiness check needs a non-empty name, got {name!r}")
        if name in self.checks:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        if not callable(check):
            raise ValueError(f"readiness check {name!r}: expected a function, got {type(check).__name__}")
        self.checks[name] = check

    def _start(self, name: str) -> Future[object]:
        with self._lock:
            running = self._running.get(name)
            if running is not None and not running.done():
                return running
            future: Future[object] = Future()
            self._running[name] = future
        check = self.checks[name]

        def run() -> None:
            try:
                future.set_result(check())
            except BaseException as exc:  # reported as the reason, whatever it is
                future.set_exception(exc)

        threading.Thread(target=run, name=f"pyservice-readiness-{name}", daemon=True).start()
        return future

    def run(self) -> dict[str, str | None]:
        """Run every check; each name maps to None (ready) or the reason it is not."""
        futures = {name: self._start(name) for name in self.checks}
        deadline = time.monotonic() + self.timeout
        results: dict[str, str | None] = {}
        for name, future in futures.items():
            try:
                value = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                results[name] = f"no answer within {self.timeout}s"
            except Exception as exc:
                logger.warning("readiness check %r failed", name, exc_info=exc)
                detail = f": {exc}" if self.debug else ""
                results[name] = f"raised {type(exc).__name__}{detail}"
            else:
                results[name] = None if value is None else str(value)
        return results


def _respond(environ: WSGIEnvironment, start_response: StartResponse, status: int, body: bytes) -> list[bytes]:
    start_response(STATUS_LINES[status], [JSON_HEADER, ("Content-Length", str(len(body)))])
    return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def answer_get(endpoint: GetEndpoint, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """Answer a request to a GET endpoint: the endpoint itself, or a 405 for other methods."""
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
        return endpoint(environ, start_response)
    body = error_body("protocol", "MethodNotAllowed", "this path answers GET and HEAD")
    start_response(STATUS_LINES[405], [JSON_HEADER, ("Content-Length", str(len(body))), ("Allow", "GET, HEAD")])
    return [body]


_LIVE_BODY = dumps({"status": "live"})


def live_endpoint(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """The liveness endpoint: the process answers, so it is live."""
    return _respond(environ, start_response, 200, _LIVE_BODY)


def ready_endpoint(groups: Iterable[tuple[str, ReadinessChecks]]) -> GetEndpoint:
    """The readiness endpoint over the checks of one service (or several, each name prefixed).

    Args:
        groups: ``(prefix, checks)`` pairs; the prefix (``""`` for none) is
            put before each check's name in the answer.
    """
    groups = list(groups)

    def ready(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        checks: dict[str, Any] = {}
        for prefix, readiness in groups:
            for name, reason in readiness.run().items():
                checks[prefix + name] = "ready" if reason is None else reason
        failing = any(value != "ready" for value in checks.values())
        body = dumps({"status": "not ready" if failing else "ready", "checks": checks})
        return _respond(environ, start_response, 503 if failing else 200, body)

    return ready
