"""Serve any WSGI app exactly as ``pyservice serve`` serves a Service.

    python -m suite.serve pyservice suite.apps:bare_app --port 8000 --workers 2

The bare app and the peers are not Services, so ``pyservice serve`` refuses
them; this runs them under the same server with the same settings as
pyservice-core's ``_server.py`` (pyservice: its own server with its default
limits; gunicorn: its sync worker with the whole-request deadline on each
client socket, preloaded app, no access log, timeout 30; granian:
``Granian(target, interface=WSGI, workers=N)`` with its defaults), so that the
ratio to the bare app measures the application and nothing else.
"""

from __future__ import annotations

import argparse
import importlib

# The very functions `pyservice serve` runs: the peers are measured under the
# same server settings as pyservice, by construction.
from pyservice._server import serve_granian, serve_gunicorn, serve_pyservice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", choices=("pyservice", "gunicorn", "granian"))
    parser.add_argument("target", metavar="MODULE:APP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.server == "granian":
        serve_granian(args.target, args.host, args.port, args.workers)
        return
    module_name, _, attribute = args.target.partition(":")
    app = getattr(importlib.import_module(module_name), attribute)
    if args.server == "pyservice":
        serve_pyservice(app, args.host, args.port, args.workers)
    else:
        serve_gunicorn(app, args.host, args.port, args.workers, timeout=30, read_timeout=10.0)


if __name__ == "__main__":
    main()
