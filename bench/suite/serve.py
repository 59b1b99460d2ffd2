"""Serve any WSGI app exactly as ``pyservice serve`` serves a Service.

    python -m suite.serve gunicorn suite.apps:bare_app --port 8000 --workers 2

The bare app and the peers are not Services, so ``pyservice serve`` refuses
them; this runs them under the same server with the same settings as
pyservice-core's ``_server.py`` (gunicorn: its sync worker with a read
timeout on each client socket, preloaded app, no access log, timeout 30;
granian: ``Granian(target, interface=WSGI, workers=N)`` with its defaults),
so that the ratio to the bare app measures the application and nothing else.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def serve_gunicorn(
    target: str, host: str, port: int, workers: int, timeout: int = 30, read_timeout: float = 10.0
) -> None:
    from gunicorn import util
    from gunicorn.app.base import BaseApplication
    from gunicorn.workers.sync import SyncWorker

    app = _load(target)

    class Worker(SyncWorker):  # type: ignore[misc]
        def accept(self, listener: Any) -> None:
            client, address = listener.accept()
            client.settimeout(read_timeout)
            util.close_on_exec(client)
            self.handle(listener, client, address)

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
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
    from granian import Granian
    from granian.constants import Interfaces

    Granian(target, address=host, port=port, interface=Interfaces.WSGI, workers=workers).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", choices=("gunicorn", "granian"))
    parser.add_argument("target", metavar="MODULE:APP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.server == "gunicorn":
        serve_gunicorn(args.target, args.host, args.port, args.workers)
    else:
        serve_granian(args.target, args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
