"""``python -m pyservice_auth``: make API keys and secrets without writing them to a file.

``python -m pyservice_auth api-key --pepper-env AUTH_PEPPER [--prefix P] [--principal ID]``
prints the new key once, and the config entry that stores its hash.
``python -m pyservice_auth secret`` prints a random secret, for a pepper or a signing key.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence

from ._apikeys import generate_api_key

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pyservice_auth", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    api_key = commands.add_parser("api-key", help="make an API key and the config entry storing its hash")
    # The pepper comes from the environment: a command-line argument would reach shell history and `ps`.
    api_key.add_argument("--pepper-env", required=True, help="the environment variable holding the pepper")
    api_key.add_argument("--prefix", help="the key's prefix (random by default)")
    api_key.add_argument("--principal", default="CHANGE-ME", help="the principal the key authenticates")
    commands.add_parser("secret", help="print a random 256-bit secret (a pepper, a signing secret)")
    arguments = parser.parse_args(argv)
    if arguments.command == "secret":
        print(secrets.token_urlsafe(32))
        return 0
    pepper = os.environ.get(arguments.pepper_env)
    if not pepper:
        print(f"error: the environment variable {arguments.pepper_env!r} is unset or empty", file=sys.stderr)
        return 2
    try:
        generated = generate_api_key(pepper, arguments.prefix)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    entry = {generated.prefix: {"hash": generated.hash, "principal": arguments.principal, "roles": []}}
    print(f"key (give it to the caller; it is not stored anywhere): {generated.key}")
    print("config entry for plugins.auth.api_keys:")
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
