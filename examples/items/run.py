"""The main job: serve the items service under the production server, call it.

python examples/items/run.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pyservice.testing import LiveServer

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import client  # noqa: E402 - the example's own module, next to this file


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {"ITEMS_DATABASE": os.path.join(scratch, "items.sqlite3")}
        with LiveServer("service:service", workers=2, cwd=HERE, env=env) as server:
            print(f"items service under gunicorn, 2 workers, at {server.url}")
            client.main(server.port)
        print("server stopped")


if __name__ == "__main__":
    main()
