"""The ``pyservice`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orjson import OPT_INDENT_2

from ._client import Client
from ._group import ServiceGroup
from ._plugin import installed_plugins
from ._server import SERVERS, load_object, load_service, serve
from ._service import Service
from ._wire import dumps

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyservice", description="Serve and inspect pyservice services.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="serve a Service (or a ServiceGroup) under a production WSGI server")
    run.add_argument("target", metavar="MODULE:SERVICE", help="where the Service or ServiceGroup is, e.g. app:service")
    run.add_argument("--host", help="address to bind (default: the api's endpoint host)")
    run.add_argument("--port", type=int, help="port to bind (default: the api's endpoint port)")
    run.add_argument("--workers", type=int, help="worker processes (default: the number of cores)")
    run.add_argument("--server", choices=SERVERS, default="gunicorn", help="the WSGI server (default: gunicorn)")
    run.add_argument("--timeout", type=int, default=30, help="seconds one request may take before its worker restarts")
    run.add_argument("--read-timeout", type=float, default=10.0, help="seconds to wait for each read of a request body")

    commands.add_parser("plugins", help="list the installed plugins")

    chain = commands.add_parser("chain", help="print the composed chain of each operation")
    chain.add_argument("target", metavar="MODULE:SERVICE", help="a Service, ServiceGroup or Client")
    chain.add_argument("operation", nargs="?", help="only this operation")
    chain.add_argument("--deadline", action="store_true", help="the chain of a call that brings a deadline")

    openapi = commands.add_parser("openapi", help="print the OpenAPI 3.1 document of a Service as JSON")
    openapi.add_argument("target", metavar="MODULE:SERVICE", help="a Service or ServiceGroup")
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
        owner = load_object(args.target, (Service, ServiceGroup, Client), "a pyservice.Service, ServiceGroup or Client")
        operations = _all_operations(owner)
        if args.operation is not None and args.operation not in operations:
            known = ", ".join(sorted(operations)) or "none"
            print(f"pyservice: {args.target} has no operation {args.operation!r} (known: {known})", file=sys.stderr)
            return 2
        sys.stdout.write(owner.describe_chain(args.operation, deadline=args.deadline))
    elif args.command == "openapi":
        document = load_service(args.target).openapi()
        sys.stdout.write(dumps(document, option=OPT_INDENT_2).decode() + "\n")
    return 0


def _all_operations(owner: Service | ServiceGroup | Client) -> set[str]:
    if isinstance(owner, ServiceGroup):
        return {name for service in owner.services for name in service.api.operations}
    return set(owner.api.operations)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
