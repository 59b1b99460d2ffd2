"""The main job: the items service under the production server, every plugin on, and a client.

    python examples/items/run.py [--keep]

Set ITEMS_BACKENDS=shared to run it on Redis and PostgreSQL instead of the
embedded backends. With --keep the service keeps running after the story,
with its API explorer, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from pyservice.testing import LiveServer
from pyservice_auth import generate_api_key

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import client  # noqa: E402 - the example's own module, next to this file


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the service running after the story, until Ctrl-C")
    keep = parser.parse_args(argv).keep
    shared = os.environ.get("ITEMS_BACKENDS") == "shared"
    with tempfile.TemporaryDirectory() as scratch:
        # The operator's part: a pepper for the service, an API key for the client.
        pepper = secrets.token_hex(32)
        key = generate_api_key(pepper, prefix="demo")
        env = {"ITEMS_PEPPER": pepper, "ITEMS_API_KEY_PREFIX": key.prefix, "ITEMS_API_KEY_HASH": key.hash}
        os.environ["ITEMS_API_KEY"] = key.key
        if not shared:
            env["ITEMS_DATABASE_URL"] = f"sqlite:///{scratch}/items.sqlite3"
        backends = "Redis and PostgreSQL" if shared else "SQLite and memory (the throttle counts per worker process)"
        print("starting the items service under pyservice serve (its own server, 2 workers)...", flush=True)
        started = time.perf_counter()
        with LiveServer("service:service", workers=2, cwd=HERE, env=env) as server:
            print(
                f"items service under pyservice serve (its own server, 2 workers), {backends}, at {server.url}"
                f" (ready in {time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            client.main(server.port)
            if keep:
                _keep_serving(server.url, key.key)
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
    if not keep:
        _what_next(shared)


def _keep_serving(url: str, api_key: str) -> None:
    print(
        f"\nserving until Ctrl-C:\n"
        f"  API explorer     {url}/docs\n"
        f"  OpenAPI document {url}/openapi.json\n"
        f"  this run's API key (for Authorization: Bearer ...): {api_key}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print()


def _what_next(shared: bool) -> None:
    python = sys.executable
    if Path(python).is_relative_to(Path.cwd()):
        python = str(Path(python).relative_to(Path.cwd()))
    script = os.path.relpath(Path(__file__).resolve())
    print("\nwhat to try next:")
    print(f"  {python} {script} --keep")
    print("      the same, then the service stays up with its API explorer (Swagger UI) at /docs")
    if not shared:
        print(f"  ITEMS_BACKENDS=shared {python} {script}")
        print("      the same service on Redis and PostgreSQL: one cache and one throttle count for both workers")
    print(f"  {os.path.relpath(HERE / 'service.py')} and {os.path.relpath(HERE / 'api.json')}")
    print("      the whole service: its handlers, and the description that turns the plugins on")
    print("  docs/getting-started.md, docs/configuration.md, docs/coming-from-flask-or-fastapi.md")


if __name__ == "__main__":
    main()
