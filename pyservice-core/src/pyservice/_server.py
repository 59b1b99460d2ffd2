"""Running a Service under a production server: ``pyservice serve``.

Three servers, chosen by measurement (docs/deploying.md has the numbers):

- ``pyservice`` (the default): our own prefork server on uvloop and
  httptools (``pyservice._http``, ``pyservice._prefork``). It reads each
  request whole, under a whole-request deadline, before the application runs,
  so stalled and trickled bodies hold no worker, and it calls the application
  inline, with no thread hand-off: the fastest of the three on our calls.
- ``gunicorn``: sync workers, with the same whole-request deadline on each
  client socket (gunicorn itself leaves them blocking forever).
- ``granian``: its WSGI interface. It reads a body from its blocking
  threads with no timeout at all (its maintainers declined to add one), so a
  stalled body holds a thread until the caller gives up; use it behind a
  proxy that buffers whole requests.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._group import ServiceGroup
from ._service import Service
from .typing import WSGIApplication

if TYPE_CHECKING:
    # httptools comes with the `server` extra: the server's modules are
    # imported only to serve, never by `import pyservice` or the other commands.
    from ._http import Limits

__all__ = [
    "SERVERS",
    "WORKERS_ENV",
    "ServeOptions",
    "load_object",
    "load_service",
    "serve",
    "serve_granian",
    "serve_gunicorn",
    "serve_pyservice",
    "worker_processes",
]

logger = logging.getLogger("pyservice.server")

SERVERS = ("pyservice", "gunicorn", "granian")
#: Set by ``pyservice serve`` before the service is imported, so plugins can
#: tell at start-up how many worker processes will share their state.
WORKERS_ENV = "PYSERVICE_WORKERS"


def worker_processes() -> int | None:
    """How many worker processes serve this service, when it is known.

    ``pyservice serve`` tells its workers (and the plugins they set up) by
    the ``PYSERVICE_WORKERS`` environment variable; anywhere else this is
    ``None``. A plugin with per-process state uses it to refuse, at
    start-up, a deployment where that state would silently be split;
    ``environ["wsgi.multiprocess"]`` tells the same at the first request.
    """
    value = os.environ.get(WORKERS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass(frozen=True)
class ServeOptions:
    """How ``pyservice serve`` runs a service; each field is a flag of the command.

    Attributes:
        host: the address to bind; ``None`` for the api's endpoint host.
        port: the port to bind; ``None`` for the api's endpoint port.
        workers: worker processes; ``None`` for the number of cores.
        server: ``"pyservice"``, ``"gunicorn"`` or ``"granian"``.
        request_timeout: seconds for a request to arrive whole, headers and
            body, before it is answered 408 (pyservice and gunicorn).
        keepalive_timeout: seconds an idle keep-alive connection is kept (pyservice).
        graceful_timeout: seconds a stopping server waits for its workers
            before it kills them.
        busy_timeout: seconds every worker must have been in a call before
            the server answers new connections itself: health probes and
            GETs, and 503 to calls (pyservice).
        timeout: seconds a gunicorn worker may spend on one request before
            gunicorn restarts it.
        read_timeout: seconds each read from a client socket may wait (gunicorn).
    """

    host: str | None = None
    port: int | None = None
    workers: int | None = None
    server: str = "pyservice"
    request_timeout: float = 5.0
    keepalive_timeout: float = 30.0
    graceful_timeout: float = 10.0
    busy_timeout: float = 2.0
    timeout: int = 30
    read_timeout: float = 10.0

    def check(self) -> None:
        """Refuse options that cannot work together, naming the flag.

        Raises:
            SystemExit: with a one-line message.
        """
        if self.server not in SERVERS:
            raise SystemExit(f"pyservice: --server must be one of {', '.join(SERVERS)}, got {self.server!r}")
        for flag, value in (
            ("--request-timeout", self.request_timeout),
            ("--keepalive-timeout", self.keepalive_timeout),
            ("--graceful-timeout", self.graceful_timeout),
            ("--busy-timeout", self.busy_timeout),
            ("--read-timeout", self.read_timeout),
            ("--timeout", self.timeout),
        ):
            if not value > 0:
                raise SystemExit(f"pyservice: {flag} must be above 0, got {value}")
        if self.workers is not None and self.workers < 1:
            raise SystemExit(f"pyservice: --workers must be at least 1, got {self.workers}")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise SystemExit(f"pyservice: --port must be between 0 and 65535, got {self.port}")
        if self.server == "gunicorn" and not self.read_timeout < self.timeout:
            raise SystemExit(
                f"pyservice: --read-timeout ({self.read_timeout}) must be below --timeout ({self.timeout})"
            )


def load_service(target: str) -> Service | ServiceGroup:
    """Import ``module:attribute`` and return the Service (or ServiceGroup) it names.

    The current directory is importable, as under gunicorn.

    Raises:
        SystemExit: with a message naming what could not be found.
    """
    found: Service | ServiceGroup = load_object(target, (Service, ServiceGroup), "a pyservice.Service or ServiceGroup")
    return found


def load_object(target: str, kinds: tuple[type, ...], what: str) -> Any:
    """Import ``module:attribute`` and return it, when it is one of ``kinds``.

    Raises:
        SystemExit: with a message naming what could not be found, or what
            was found instead of ``what``; an error raised by the module
            itself is shown with its traceback, from the module's own frames.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"pyservice: expected MODULE:SERVICE, got {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = _import(module_name)
    service = module
    for part in attribute.split("."):
        try:
            service = getattr(service, part)
        except AttributeError:
            raise SystemExit(f"pyservice: {module_name} has no attribute {attribute!r}") from None
    if not isinstance(service, kinds):
        raise SystemExit(f"pyservice: {target} is a {type(service).__name__}, not {what}")
    return service


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise SystemExit(
                f"pyservice: cannot import {module_name!r}: {exc}; run from the folder that holds it"
                f" (now {os.getcwd()}) or check MODULE:SERVICE"
            ) from None
        raise SystemExit(_user_traceback(module_name, exc)) from None
    except Exception as exc:
        raise SystemExit(_user_traceback(module_name, exc)) from None


def _user_traceback(module_name: str, exc: BaseException) -> str:
    # The frames of pyservice and of the import machinery say nothing to the
    # user; the module's own frames say where its mistake is.
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in frame.filename and os.sep + "pyservice" + os.sep not in frame.filename
    ]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return f"pyservice: importing {module_name!r} failed:\n" + "".join(lines).rstrip()


def max_body_size(service: Service | ServiceGroup) -> int:
    """The largest body any operation of ``service`` reads: the server buffers no more."""
    services = service.services if isinstance(service, ServiceGroup) else (service,)
    return max(
        (op.max_body_size for each in services for op in each.api.operations.values()),
        default=max(each.api.max_body_size for each in services),
    )


def serve(target: str, options: ServeOptions | None = None, **flags: Any) -> None:
    """Serve the Service at ``target`` until SIGTERM or SIGINT.

    Args:
        target: ``module:attribute`` of the Service or ServiceGroup.
        options: how to serve it; defaults to ``ServeOptions``' defaults.
        **flags: fields of ``ServeOptions``, instead of ``options``.

    Raises:
        SystemExit: a flag is wrong, the service cannot be imported, or the
            port cannot be bound; the message is one line naming the cause.
    """
    options = options or ServeOptions(**flags)
    options.check()
    workers = options.workers or os.cpu_count() or 1
    os.environ[WORKERS_ENV] = str(workers)
    service = load_service(target)
    # Before compile(): its warnings (an operation without a handler) read like the banner.
    _log_to_stderr_unless_configured()
    service.compile()  # fail here, once, rather than in every worker
    first = service.services[0] if isinstance(service, ServiceGroup) else service
    endpoint = first.api.endpoint
    host = options.host or endpoint.host
    port = endpoint.port if options.port is None else options.port
    if options.server == "granian":
        _check_port_free(host, port)
        logger.info(banner(service, options, host, port, workers))
        serve_granian(target, host, port, workers, graceful_timeout=options.graceful_timeout)
    elif options.server == "gunicorn":
        _check_port_free(host, port)
        logger.info(banner(service, options, host, port, workers))
        serve_gunicorn(
            service.wsgi_application,
            host,
            port,
            workers,
            options.timeout,
            options.read_timeout,
            request_timeout=options.request_timeout,
            graceful_timeout=options.graceful_timeout,
        )
    else:
        _require_server_extra()
        from ._http import Limits

        limits = Limits(
            request_timeout=options.request_timeout,
            keepalive_timeout=options.keepalive_timeout,
            max_body_size=max_body_size(service),
        )
        serve_pyservice(
            service.wsgi_application,
            host,
            port,
            workers,
            limits=limits,
            graceful_timeout=options.graceful_timeout,
            busy_timeout=options.busy_timeout,
            announce=lambda: logger.info(banner(service, options, host, port, workers)),
        )


def _log_to_stderr_unless_configured() -> None:
    # The server's lines (the banner, workers starting and dying) go through
    # logging, so an application that configured it (pyservice-logging's
    # stdlib output, say) renders them like its own; otherwise to stderr.
    if logging.getLogger().handlers or logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pyservice: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def banner(service: Service | ServiceGroup, options: ServeOptions, host: str, port: int, workers: int) -> str:
    """What ``pyservice serve`` prints at start-up: what is served, where, and how."""
    from importlib.metadata import version

    services = service.services if isinstance(service, ServiceGroup) else (service,)
    shown_host = f"[{host}]" if ":" in host else host
    lines = [f"pyservice-core {version('pyservice-core')} serving"]
    for each in services:
        api = each.api
        operations = ", ".join(api.operations) or "no operations"
        url = f"http://{shown_host}:{port}{api.endpoint.path}".replace("{version}", api.version)
        lines.append(f"  {api.name} {api.version} at {url}: {operations}")
        extras = []
        if api.openapi is not None:
            extras.append(f"openapi {api.openapi}")
        if api.explorer is not None:
            extras.append(f"explorer {api.explorer}")
        if api.health is not None:
            paths = [path for path in (api.health.live, api.health.ready) if path is not None]
            if paths:
                extras.append("health " + ", ".join(paths))
        if extras:
            lines.append("    " + "; ".join(extras))
    how = {
        "pyservice": (
            f"requests whole within {options.request_timeout:g}s, idle connections kept {options.keepalive_timeout:g}s"
        ),
        "gunicorn": f"sync workers, requests whole within {options.request_timeout:g}s, {options.timeout}s per call",
        "granian": "WSGI, no request deadline: put a buffering proxy in front",
    }[options.server]
    plural = "s" if workers != 1 else ""
    lines.append(
        f"  server {options.server}, {workers} worker{plural}, {how}, stops within {options.graceful_timeout:g}s"
    )
    return "\n".join(lines)


def _check_port_free(host: str, port: int) -> None:
    # gunicorn and granian report a port in use with a retry loop or a
    # traceback; say it in one line before starting them.
    from ._prefork import bind

    bind(host, port).close()


def serve_pyservice(
    app: WSGIApplication,
    host: str,
    port: int,
    workers: int,
    *,
    limits: Limits | None = None,
    graceful_timeout: float = 10.0,
    busy_timeout: float = 2.0,
    announce: Any = None,
) -> None:
    """Serve a WSGI app under pyservice's own server until SIGTERM or SIGINT.

    What ``pyservice serve`` runs by default; the benchmarks serve their
    peers with it too, so that both are measured under the same settings.

    Args:
        app: the WSGI application.
        host: the address to bind.
        port: the port to bind.
        workers: worker processes.
        limits: deadlines and sizes per connection.
        graceful_timeout: seconds the workers get to stop before they are killed.
        busy_timeout: seconds every worker must have been in a call before
            the arbiter answers new connections itself.
        announce: called once the socket is bound, before the workers start.
    """
    _require_server_extra()
    from ._http import Limits
    from ._prefork import bind, raise_open_files_limit, run_arbiter

    raise_open_files_limit()
    sock = bind(host, port)
    if announce is not None:
        announce()
    run_arbiter(
        app,
        sock,
        workers=workers,
        limits=limits or Limits(),
        graceful_timeout=graceful_timeout,
        busy_timeout=busy_timeout,
    )


def _require_server_extra() -> None:
    try:
        import httptools  # noqa: F401 - checked here, imported by the server's modules
    except ImportError:
        raise SystemExit("pyservice: httptools is not installed: pip install 'pyservice-core[server]'") from None


class _DeadlineSocket(socket.socket):
    """A gunicorn client socket whose reads share one deadline: the whole request's."""

    deadline = 0.0
    read_timeout = 10.0
    #: A timeout gunicorn set itself (2 s to drain a connection it closes): it caps ours.
    cap: float | None = None

    def settimeout(self, value: float | None) -> None:
        self.cap = value
        super().settimeout(value)

    def recv(self, size: int, flags: int = 0) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive whole in time")
        timeout = min(self.read_timeout, left) if self.cap is None else min(self.read_timeout, left, self.cap)
        super().settimeout(timeout)
        return super().recv(size, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        # The answer is not bound by the request's deadline, only by each write's.
        super().settimeout(self.read_timeout if self.cap is None else min(self.read_timeout, self.cap))
        super().sendall(data, flags)


def serve_gunicorn(
    app: WSGIApplication,
    host: str,
    port: int,
    workers: int,
    timeout: int,
    read_timeout: float,
    *,
    request_timeout: float = 5.0,
    graceful_timeout: float = 10.0,
) -> None:
    """Serve a WSGI app under gunicorn's sync workers, each request read whole within ``request_timeout``.

    gunicorn leaves client sockets blocking forever; here each read waits at
    most ``read_timeout`` and all the reads of one request together at most
    ``request_timeout`` from the connection's accept, so a stalled or trickled
    body is answered 408 by the service and the worker lives on.
    """
    try:
        from gunicorn import util
        from gunicorn.app.base import BaseApplication
        from gunicorn.workers.sync import SyncWorker
    except ImportError:
        raise SystemExit("pyservice: gunicorn is not installed: pip install 'pyservice-core[gunicorn]'") from None

    class Worker(SyncWorker):  # type: ignore[misc]
        def accept(self, listener: Any) -> None:
            client, address = listener.accept()
            wrapped = _DeadlineSocket(client.family, client.type, client.proto, fileno=client.detach())
            wrapped.deadline = time.monotonic() + request_timeout
            wrapped.read_timeout = read_timeout
            util.close_on_exec(wrapped)
            self.handle(listener, wrapped, address)

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings: dict[str, Any] = {
                "bind": bind,
                "workers": workers,
                "worker_class": Worker,
                "timeout": timeout,
                "graceful_timeout": math.ceil(graceful_timeout),  # gunicorn takes whole seconds
                "preload_app": True,
                "accesslog": None,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Application().run()


def serve_granian(target: str, host: str, port: int, workers: int, *, graceful_timeout: float = 10.0) -> None:
    """Serve the WSGI app at ``module:attribute`` under granian, with its defaults.

    Its workers are killed ``graceful_timeout`` seconds after SIGTERM: a
    stalled body would otherwise keep granian from stopping.
    """
    try:
        from granian import Granian
        from granian.constants import Interfaces
    except ImportError:
        raise SystemExit("pyservice: granian is not installed: pip install 'pyservice-core[granian]'") from None
    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        workers_kill_timeout=math.ceil(graceful_timeout),
    ).serve()


def watched_files(root: str, suffixes: Iterable[str] = (".py", ".json")) -> dict[str, float]:
    """The source files under ``root`` that ``--reload`` watches, with their modification times.

    Hidden folders, virtual environments and caches are skipped.
    """
    found: dict[str, float] = {}
    suffixes = tuple(suffixes)
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [
            name
            for name in subfolders
            if not name.startswith(".") and name not in ("__pycache__", "node_modules", "venv", "site-packages")
        ]
        for name in files:
            if name.endswith(suffixes):
                path = os.path.join(folder, name)
                try:
                    found[path] = os.stat(path).st_mtime
                except OSError:  # pragma: no cover - removed meanwhile
                    continue
        if len(found) > 20_000:  # a home folder, not a project: stop looking
            break
    return found
