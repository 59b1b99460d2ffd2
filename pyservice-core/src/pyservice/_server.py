"""Running a Service under a production WSGI server.

gunicorn's sync workers are the default: a request body that stops short of
its Content-Length ends, after the worker's timeout, in an answer rather
than a worker held forever. granian serves several times more requests per
second (see docs/performance.md) but never times out a body read (its
maintainers declined to add one), so it is offered for deployments behind a
proxy that buffers whole requests.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ._service import Service

__all__ = ["SERVERS", "WORKERS_ENV", "load_service", "serve", "worker_processes"]

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


def load_service(target: str) -> Service:
    """Import ``module:attribute`` and return the Service it names.

    The current directory is importable, as under gunicorn.

    Raises:
        SystemExit: with a message naming what could not be found.
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
    if not isinstance(service, Service):
        raise SystemExit(f"pyservice: {target} is a {type(service).__name__}, not a pyservice.Service")
    return service  # type: ignore[return-value]


def serve(
    target: str,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    server: str = "gunicorn",
    timeout: int = 30,
) -> None:
    """Serve the Service at ``target`` until interrupted.

    Args:
        target: ``module:attribute`` of the Service.
        host: the address to bind; defaults to the api's endpoint host.
        port: the port to bind; defaults to the api's endpoint port.
        workers: worker processes; defaults to the number of cores.
        server: ``"gunicorn"`` or ``"granian"``.
        timeout: seconds a worker may spend on one request, body read
            included, before the request fails (gunicorn).
    """
    if server not in SERVERS:
        raise SystemExit(f"pyservice: --server must be one of {', '.join(SERVERS)}, got {server!r}")
    workers = workers or os.cpu_count() or 1
    os.environ[WORKERS_ENV] = str(workers)
    service = load_service(target)
    service.compile()  # fail here, once, rather than in every worker
    endpoint = service.api.endpoint
    host = host or endpoint.host
    port = endpoint.port if port is None else port
    if server == "granian":
        _serve_granian(target, host, port, workers)
    else:
        _serve_gunicorn(service, host, port, workers, timeout)


def _serve_gunicorn(service: Service, host: str, port: int, workers: int, timeout: int) -> None:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise SystemExit("pyservice: gunicorn is not installed: pip install 'pyservice-core[server]'") from None

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings: dict[str, Any] = {
                "bind": bind,
                "workers": workers,
                "worker_class": "sync",
                # The sync worker sets this as the client socket's timeout too,
                # which bounds the read of a body that never completes.
                "timeout": timeout,
                "graceful_timeout": timeout,
                "preload_app": True,
                "accesslog": None,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return service.wsgi_application

    Application().run()


def _serve_granian(target: str, host: str, port: int, workers: int) -> None:
    try:
        from granian import Granian
    except ImportError:
        raise SystemExit("pyservice: granian is not installed: pip install 'pyservice-core[granian]'") from None
    Granian(target, address=host, port=port, interface="wsgi", workers=workers).serve()
