"""Helpers for testing services, clients and plugins.

- ``client_for`` builds a Client wired to a Service in-process: the
  real WSGI application answers, both sides' plugins run, bodies are
  encoded and decoded, and no socket is opened.
- ``stub`` replaces the HTTP exchange of one operation of a Client for
  the length of a ``with`` block: the client's own hooks still run.
- ``LiveServer`` runs a Service under ``pyservice serve`` (a real
  multi-worker server) on a free loopback port, and stops it afterwards.
- ``PrivateRedis`` and ``PrivatePostgres`` start servers of the
  test's own, which a fault test may stop, restart and freeze without
  touching the machine's.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from ._client import Client, ClientContext
from ._container import Container
from ._plugin import Plugin
from ._ports import free_port
from ._private_servers import PrivatePostgres, PrivateRedis, PrivateServerUnavailable
from ._transport import ClientResponse
from ._wire import encode, loads
from .typing import WSGIApplication

__all__ = [
    "LiveServer",
    "PrivatePostgres",
    "PrivateRedis",
    "PrivateServerUnavailable",
    "Stub",
    "WSGITransport",
    "client_for",
    "free_port",
    "stub",
]


class WSGITransport(requests.adapters.BaseAdapter):
    """A ``requests`` transport that hands each request to a WSGI application.

    Mount it on a session (``session.mount("http://", WSGITransport(app))``)
    and every request goes to ``app`` in the calling thread.
    """

    def __init__(self, app: WSGIApplication, *, remote_addr: str = "127.0.0.1") -> None:
        super().__init__()
        self.app = app
        self.remote_addr = remote_addr

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        """Call the application with ``request`` and return its answer."""
        url = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method or "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "SERVER_NAME": url.hostname or "localhost",
            "SERVER_PORT": str(url.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        environ.setdefault("CONTENT_LENGTH", str(len(body)))
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started["status"] = status
            started["headers"] = headers
            return lambda data: None

        chunks = self.app(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        response = requests.Response()
        response.status_code = int(started["status"].split(" ", 1)[0])
        response.reason = started["status"].partition(" ")[2]
        response.headers = CaseInsensitiveDict(started["headers"])
        response.raw = io.BytesIO(content)
        response._content = content
        response.url = request.url or ""
        response.request = request
        # requests annotates this as its HTTPAdapter; any adapter works at run time.
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        """Nothing to close: no connection is ever opened."""


def client_for(
    service: Any,
    api: Mapping[str, Any] | None = None,
    *,
    available_plugins: Iterable[type[Plugin]] = (),
    remote_addr: str = "127.0.0.1",
    validate: bool = False,
) -> Client:
    """A Client whose calls are answered in-process by ``service``.

    Args:
        service: a Service, a ServiceGroup (give ``api``: the version the
            client is pinned to), or any WSGI application.
        api: the client's api description; by default the service's own.
        available_plugins: plugin classes for the client, by name.
        remote_addr: the caller address the service sees.
        validate: the Client's ``validate``: check requests before sending.
    """
    description = dict(api if api is not None else service.api.raw)
    session = requests.Session()
    session.mount("http://", WSGITransport(service, remote_addr=remote_addr))
    session.mount("https://", WSGITransport(service, remote_addr=remote_addr))
    return Client(session=session, available_plugins=available_plugins, validate=validate, **description)


class Stub:
    """What ``stub`` yields: the calls the stubbed operation received.

    Attributes:
        operation: the stubbed operation's name.
        calls: the request of each call, as the service would have decoded
            it (after the client's hooks changed it), oldest first.
    """

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.calls: list[Container] = []

    def __repr__(self) -> str:
        return f"<Stub {self.operation}: {len(self.calls)} calls>"


@contextlib.contextmanager
def stub(
    client: Client,
    operation: str,
    response: Mapping[str, Any] | None = None,
    raises: BaseException | type[BaseException] | None = None,
    handler: Callable[[Container], Mapping[str, Any] | None] | None = None,
) -> Iterator[Stub]:
    """Replace the HTTP exchange of one operation of ``client`` within a ``with`` block.

    Only the exchange is replaced: the client's request, operation and
    attempt hooks run, the request is encoded (and must be encodable), and
    the answer is decoded as a real one would be. Other operations are
    untouched::

        with stub(client, "get_item", response={"item": {"id": 1}}) as get_item:
            assert client.get_item(id=1).item == {"id": 1}
        assert get_item.calls == [{"id": 1}]

    Args:
        client: the Client to stub.
        operation: the operation to stub.
        response: the response fields every call answers (default: none).
        raises: an exception (or exception class) every call raises, in
            place of the exchange: ``client.exceptions.DoesNotExist("gone")``,
            or ``pyservice.CallTimeout(..., operation=...)`` to exercise
            retries.
        handler: ``handler(request)`` returns the response fields (or
            raises) for each call; for answers that depend on the request.

    Yields:
        A ``Stub`` recording the calls.

    Raises:
        AttributeError: the client's api does not declare ``operation``.
        ValueError: more than one of ``response``, ``raises`` and ``handler``.
    """
    if operation not in client.api.operations:
        raise AttributeError(f"{client.api.name} has no operation {operation!r}")
    if sum(given is not None for given in (response, raises, handler)) > 1:
        raise ValueError("give one of response, raises and handler")
    record = Stub(operation)

    def send(context: ClientContext) -> None:
        assert context.body is not None
        request = Container.wrap(loads(context.body))
        record.calls.append(request)
        if raises is not None:
            raise raises
        fields = handler(request) if handler is not None else response
        content = encode(dict(fields) if fields is not None else {})
        headers = {"Content-Type": "application/json", "Content-Length": str(len(content))}
        context.http_response = ClientResponse(200, headers, content, reason="OK", operation=context.operation)
        context.status = 200

    stubs = client._stubs
    previous = stubs.get(operation)
    stubs[operation] = send
    client._compiled = None
    try:
        yield record
    finally:
        if previous is None:
            stubs.pop(operation, None)
        else:
            stubs[operation] = previous
        client._compiled = None


class LiveServer:
    """``pyservice serve`` in a subprocess, on a free loopback port.

    Use it as a context manager; it waits until the server accepts
    connections and stops it (SIGTERM, then SIGKILL) on exit::

        with LiveServer("myapp:service", workers=2) as server:
            client = Client(**api, endpoint={"port": server.port})

    Args:
        target: ``module:attribute`` of the Service.
        workers: worker processes.
        server: ``"pyservice"`` (the default), ``"gunicorn"`` or ``"granian"``.
        request_timeout: seconds for a request to arrive whole before it is answered 408.
        graceful_timeout: seconds the server gets to stop after SIGTERM.
        busy_timeout: seconds every worker must have been in a call before the
            server answers health probes itself, and calls with 503.
        timeout: gunicorn's per-request timeout, in seconds.
        read_timeout: gunicorn's timeout for each read of a body, in seconds.
        cwd: the directory to run in (``target`` is imported from there).
        env: extra environment variables for the server.
        start_timeout: seconds to wait for the server to accept connections.
    """

    def __init__(
        self,
        target: str,
        *,
        workers: int = 2,
        server: str = "pyservice",
        request_timeout: float = 5.0,
        graceful_timeout: float = 10.0,
        busy_timeout: float = 2.0,
        timeout: int = 30,
        read_timeout: float = 10.0,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.workers = workers
        self.server = server
        self.request_timeout = request_timeout
        self.graceful_timeout = graceful_timeout
        self.busy_timeout = busy_timeout
        self.timeout = timeout
        self.read_timeout = read_timeout
        self.cwd = cwd
        self.env = dict(env or {})
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._final_output = ""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        command = [
            sys.executable, "-m", "pyservice", "serve", self.target,
            "--host", self.host, "--port", str(self.port),
            "--workers", str(self.workers), "--server", self.server,
            "--request-timeout", str(self.request_timeout), "--graceful-timeout", str(self.graceful_timeout),
            "--busy-timeout", str(self.busy_timeout),
            "--timeout", str(self.timeout), "--read-timeout", str(self.read_timeout),
        ]  # fmt: skip
        # A file, not a pipe: a server that logs a lot must never block on it.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=self.cwd, env={**os.environ, **self.env}, stdout=self._output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"pyservice serve exited with {code}:\n{self.stop()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
            else:
                return
        self.stop()
        raise RuntimeError(f"pyservice serve did not accept connections within {self.start_timeout}s")

    def stop(self) -> str:
        """Stop the server; returns what it printed."""
        process = self.process
        if process is None:
            return ""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.graceful_timeout + 5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        self._final_output = self.output()
        self._output.close()
        return self._final_output

    def output(self) -> str:
        """What the server has printed so far (all of it, once stopped)."""
        output = getattr(self, "_output", None)
        if output is None or output.closed:
            return self._final_output
        output.seek(0)
        text: str = output.read().decode("utf-8", "replace")
        return text

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
