"""The main job: the items service under the production server, every plugin on, and a client.

    python examples/items/run.py

Set ITEMS_BACKENDS=shared to run it on Redis and PostgreSQL instead of the
embedded backends.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

from pyservice.testing import LiveServer
from pyservice_auth import generate_api_key

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import client  # noqa: E402 - the example's own module, next to this file


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        # The operator's part: a pepper for the service, an API key for the client.
        pepper = secrets.token_hex(32)
        key = generate_api_key(pepper, prefix="demo")
        env = {"ITEMS_PEPPER": pepper, "ITEMS_API_KEY_PREFIX": key.prefix, "ITEMS_API_KEY_HASH": key.hash}
        os.environ["ITEMS_API_KEY"] = key.key
        if os.environ.get("ITEMS_BACKENDS") != "shared":
            env["ITEMS_DATABASE_URL"] = f"sqlite:///{scratch}/items.sqlite3"
        with LiveServer("service:service", workers=2, cwd=HERE, env=env) as server:
            if os.environ.get("ITEMS_BACKENDS") == "shared":
                backends = "Redis and PostgreSQL"
            else:
                backends = "SQLite and memory (the throttle counts per worker process)"
            print(f"items service under pyservice serve (its own server, 2 workers), {backends}, at {server.url}")
            client.main(server.port)
            output = server.output()
        print("server stopped; what its logging plugin wrote:")
        for line in output.splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == "call":
                    outcome = event.get("error") or event["outcome"]
                    cache = f"  cache {event['cache']}" if "cache" in event else ""
                    caller = event.get("caller") or "anonymous"
                    print(
                        f"  {event['operation']:<9} {outcome:<17} {event['status']}  {caller:<12}"
                        f" {event['duration_ms']:>7} ms{cache}"
                    )


if __name__ == "__main__":
    main()
