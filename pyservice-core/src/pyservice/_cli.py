"""The ``pyservice`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from orjson import OPT_INDENT_2

from ._client import Client
from ._group import ServiceGroup
from ._plugin import installed_plugins
from ._reload import serve_with_reload
from ._server import SERVERS, ServeOptions, load_object, load_service, serve
from ._service import Service
from ._wire import dumps

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyservice", description="Serve and inspect pyservice services.")
    parser.add_argument("--version", action="version", version=f"pyservice-core {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "serve",
        help="serve a Service (or a ServiceGroup) under a production server",
        description="Serve a Service (or a ServiceGroup). Every flag can also be set from the environment: "
        "PYSERVICE_<FLAG> (PYSERVICE_REQUEST_TIMEOUT=3), and the port from PORT too.",
    )
    run.add_argument("target", metavar="MODULE:SERVICE", help="where the Service or ServiceGroup is, e.g. app:service")
    defaults = ServeOptions()
    _flag(run, "--host", str, None, "address to bind (default: the api's endpoint host)")
    _flag(run, "--port", int, None, "port to bind (default: $PORT, else the api's endpoint port)", also="PORT")
    _flag(run, "--workers", int, None, "worker processes (default: the number of cores)")
    _flag(run, "--server", str, defaults.server, "the server: pyservice (default), gunicorn or granian", SERVERS)
    _flag(
        run,
        "--request-timeout",
        float,
        defaults.request_timeout,
        "seconds for a request to arrive whole, headers and body, before it is answered 408",
    )
    _flag(run, "--keepalive-timeout", float, defaults.keepalive_timeout, "seconds an idle connection is kept open")
    _flag(run, "--graceful-timeout", float, defaults.graceful_timeout, "seconds to stop in, after SIGTERM")
    _flag(
        run,
        "--busy-timeout",
        float,
        defaults.busy_timeout,
        "seconds every worker must have been in a call before the server itself answers health probes "
        "(and 503 to calls)",
    )
    _flag(run, "--timeout", int, defaults.timeout, "gunicorn: seconds one call may take before its worker restarts")
    _flag(run, "--read-timeout", float, defaults.read_timeout, "gunicorn: seconds each read of a request may wait")
    run.add_argument(
        "--reload", action="store_true", help="restart the server when a .py or .json file under this folder changes"
    )

    commands.add_parser("plugins", help="list the installed plugins")

    chain = commands.add_parser("chain", help="print the composed chain of each operation")
    chain.add_argument("target", metavar="MODULE:SERVICE", help="a Service, ServiceGroup or Client")
    chain.add_argument("operation", nargs="?", help="only this operation")
    chain.add_argument("--deadline", action="store_true", help="the chain of a call that brings a deadline")
    chain.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="each plugin's config (secrets masked), and why each plugin sits where it does",
    )

    openapi = commands.add_parser(
        "openapi",
        help="print the OpenAPI 3.1 document of a Service as JSON",
        description="Print the OpenAPI 3.1 document of a Service (or the merged one of a ServiceGroup). Its "
        "servers entry is where the service listens: --server-url, else --host and --port (from the environment "
        "as for serve), else the api's endpoint.",
    )
    openapi.add_argument("target", metavar="MODULE:SERVICE", help="a Service or ServiceGroup")
    _flag(openapi, "--host", str, None, "the address the service is served on (default: the api's endpoint host)")
    _flag(openapi, "--port", int, None, "the port it is served on (default: $PORT, else the api's)", also="PORT")
    openapi.add_argument("--server-url", help="the URL callers reach it at, e.g. https://api.example.com")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pyservice`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        options = ServeOptions(
            host=args.host,
            port=args.port,
            workers=args.workers,
            server=args.server,
            request_timeout=args.request_timeout,
            keepalive_timeout=args.keepalive_timeout,
            graceful_timeout=args.graceful_timeout,
            busy_timeout=args.busy_timeout,
            timeout=args.timeout,
            read_timeout=args.read_timeout,
        )
        if args.reload:
            options.check()
            return serve_with_reload(list(argv if argv is not None else sys.argv[1:]))
        serve(args.target, options)
    elif args.command == "plugins":
        plugins = installed_plugins(check=True)
        if not plugins:
            print("no plugins installed")
        for plugin in plugins:
            print(f"{plugin.name:<16} {plugin.package} {plugin.version}  ({plugin.value})")
            if plugin.problem is not None:
                print(f"  ! {plugin.problem}")
    elif args.command == "chain":
        owner = load_object(args.target, (Service, ServiceGroup, Client), "a pyservice.Service, ServiceGroup or Client")
        operations = _all_operations(owner)
        if args.operation is not None and args.operation not in operations:
            known = ", ".join(sorted(operations)) or "none"
            print(f"pyservice: {args.target} has no operation {args.operation!r} (known: {known})", file=sys.stderr)
            return 2
        sys.stdout.write(owner.describe_chain(args.operation, deadline=args.deadline, verbose=args.verbose))
        if args.verbose and not isinstance(owner, ServiceGroup) and owner.placements:
            # Each plugin's place and why; a declaration that moved one is said on its hook line anyway.
            sys.stdout.write(owner.describe_order())
    elif args.command == "openapi":
        target = load_service(args.target)
        document = target.openapi(_server_url(target, args.server_url, args.host, args.port))
        sys.stdout.write(dumps(document, option=OPT_INDENT_2).decode() + "\n")
    return 0


def _flag(
    parser: argparse.ArgumentParser,
    flag: str,
    kind: type,
    default: Any,
    help: str,
    choices: Sequence[str] | None = None,
    also: str | None = None,
) -> None:
    # Each flag's default may come from PYSERVICE_<FLAG>, as a platform sets them.
    names = ["PYSERVICE_" + flag[2:].upper().replace("-", "_")]
    if also is not None:
        names.append(also)
    for name in names:
        raw = os.environ.get(name)
        if raw:
            try:
                default = kind(raw)
            except ValueError:
                parser.error(f"{name}={raw!r} in the environment is not a valid {flag}")
            break
    parser.add_argument(flag, type=kind, default=default, choices=choices, help=help)


def _version() -> str:
    from importlib.metadata import version

    return version("pyservice-core")


def _server_url(target: Service | ServiceGroup, url: str | None, host: str | None, port: int | None) -> str | None:
    if url is not None or (host is None and port is None):
        return url
    first = target.services[0] if isinstance(target, ServiceGroup) else target
    endpoint = first.api.endpoint
    shown = host or endpoint.host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{endpoint.scheme}://{shown}:{endpoint.port if port is None else port}"


def _all_operations(owner: Service | ServiceGroup | Client) -> set[str]:
    if isinstance(owner, ServiceGroup):
        return {name for service in owner.services for name in service.api.operations}
    return set(owner.api.operations)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
