"""Running a Service under a production WSGI server.

gunicorn's sync workers are the default, with one change: gunicorn leaves
client sockets without a timeout, so a body that stops short of its
Content-Length holds the worker until the arbiter kills it. Our worker sets
a read timeout on each client socket, shorter than the worker timeout, so
such a request is answered 408 and the worker lives on. granian serves
several times more requests per second (see docs/performance.md) but never
times out a body read (its maintainers declined to add one), so it is
offered for deployments behind a proxy that buffers whole requests.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ._group import ServiceGroup
from ._service import Service
from .typing import WSGIApplication

__all__ = [
    "SERVERS",
    "WORKERS_ENV",
    "load_object",
    "load_service",
    "serve",
    "serve_granian",
    "serve_gunicorn",
    "worker_processes",
]

SERVERS = ("gunicorn", "granian")
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
            was found instead of ``what``.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"pyservice: expected MODULE:SERVICE, got {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    service = module
    for part in attribute.split("."):
        try:
            service = getattr(service, part)
        except AttributeError:
            raise SystemExit(f"pyservice: {module_name} has no attribute {attribute!r}") from None
    if not isinstance(service, kinds):
        raise SystemExit(f"pyservice: {target} is a {type(service).__name__}, not {what}")
    return service


def serve(
    target: str,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    server: str = "gunicorn",
    timeout: int = 30,
    read_timeout: float = 10.0,
) -> None:
    """Serve the Service at ``target`` until interrupted.

    Args:
        target: ``module:attribute`` of the Service or ServiceGroup.
        host: the address to bind; defaults to the api's endpoint host.
        port: the port to bind; defaults to the api's endpoint port.
        workers: worker processes; defaults to the number of cores.
        server: ``"gunicorn"`` or ``"granian"``.
        timeout: seconds a worker may spend on one request before gunicorn
            restarts it.
        read_timeout: seconds to wait for each read from a client socket,
            below ``timeout`` (gunicorn).
    """
    if server not in SERVERS:
        raise SystemExit(f"pyservice: --server must be one of {', '.join(SERVERS)}, got {server!r}")
    if not 0 < read_timeout < timeout:
        raise SystemExit(f"pyservice: --read-timeout ({read_timeout}) must be above 0 and below --timeout ({timeout})")
    workers = workers or os.cpu_count() or 1
    os.environ[WORKERS_ENV] = str(workers)
    service = load_service(target)
    service.compile()  # fail here, once, rather than in every worker
    endpoint = (service.services[0] if isinstance(service, ServiceGroup) else service).api.endpoint
    host = host or endpoint.host
    port = endpoint.port if port is None else port
    if server == "granian":
        serve_granian(target, host, port, workers)
    else:
        serve_gunicorn(service.wsgi_application, host, port, workers, timeout, read_timeout)


def serve_gunicorn(app: WSGIApplication, host: str, port: int, workers: int, timeout: int, read_timeout: float) -> None:
    """Serve a WSGI app under gunicorn's sync workers, with a read timeout on each client socket.

    What ``pyservice serve`` runs; the benchmarks serve their peers with it too,
    so that both are measured under the same settings.
    """
    try:
        from gunicorn import util
        from gunicorn.app.base import BaseApplication
        from gunicorn.workers.sync import SyncWorker
    except ImportError:
        raise SystemExit("pyservice: gunicorn is not installed: pip install 'pyservice-core[server]'") from None

    class Worker(SyncWorker):  # type: ignore[misc]
        def accept(self, listener: Any) -> None:
            client, address = listener.accept()
            client.settimeout(read_timeout)  # gunicorn's own accept leaves it blocking forever
            util.close_on_exec(client)
            self.handle(listener, client, address)

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings: dict[str, Any] = {
                "bind": bind,
                "workers": workers,
                "worker_class": Worker,
                "timeout": timeout,
                "graceful_timeout": timeout,
                "preload_app": True,
                "accesslog": None,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Application().run()


def serve_granian(target: str, host: str, port: int, workers: int) -> None:
    """Serve the WSGI app at ``module:attribute`` under granian, with its defaults."""
    try:
        from granian import Granian
        from granian.constants import Interfaces
    except ImportError:
        raise SystemExit("pyservice: granian is not installed: pip install 'pyservice-core[granian]'") from None
    Granian(target, address=host, port=port, interface=Interfaces.WSGI, workers=workers).serve()
