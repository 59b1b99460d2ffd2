"""The ``pyservice`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._plugin import installed_plugins
from ._server import SERVERS, load_service, serve

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyservice", description="Serve and inspect pyservice services.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="serve a Service under a production WSGI server")
    run.add_argument("target", metavar="MODULE:SERVICE", help="where the Service is, e.g. app:service")
    run.add_argument("--host", help="address to bind (default: the api's endpoint host)")
    run.add_argument("--port", type=int, help="port to bind (default: the api's endpoint port)")
    run.add_argument("--workers", type=int, help="worker processes (default: the number of cores)")
    run.add_argument("--server", choices=SERVERS, default="gunicorn", help="the WSGI server (default: gunicorn)")
    run.add_argument("--timeout", type=int, default=30, help="seconds one request may take before its worker restarts")
    run.add_argument("--read-timeout", type=float, default=10.0, help="seconds to wait for each read of a request body")

    commands.add_parser("plugins", help="list the installed plugins")

    chain = commands.add_parser("chain", help="print the composed chain of each operation")
    chain.add_argument("target", metavar="MODULE:SERVICE")
    chain.add_argument("operation", nargs="?", help="only this operation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pyservice`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        serve(
            args.target,
            host=args.host,
            port=args.port,
            workers=args.workers,
            server=args.server,
            timeout=args.timeout,
            read_timeout=args.read_timeout,
        )
    elif args.command == "plugins":
        plugins = installed_plugins()
        if not plugins:
            print("no plugins installed")
        for plugin in plugins:
            print(f"{plugin.name:<16} {plugin.package} {plugin.version}  ({plugin.value})")
    elif args.command == "chain":
        service = load_service(args.target)
        sys.stdout.write(service.describe_chain(args.operation))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
