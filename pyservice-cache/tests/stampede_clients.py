"""One client process of the stampede test: N threads call get_item at once.

Usage: python stampede_clients.py PORT THREADS START_AT; prints one JSON line per answer.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from pyservice import Client


def main() -> None:
    port, threads, start_at = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    api = {"name": "stampede", "timeout": 30, "retries": 0, "endpoint": {"port": port}, "operations": ["get_item"]}
    answers: list[Any] = []
    with Client(pool_size=threads, **api) as client:

        def call() -> None:
            try:
                answers.append(client.get_item(id="cold").item)
            except Exception as exc:
                answers.append({"error": repr(exc)})

        workers = [threading.Thread(target=call) for _ in range(threads)]
        # Every process starts its threads at the same wall-clock moment.
        time.sleep(max(0.0, start_at - time.time()))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    for answer in answers:
        print(json.dumps(answer))


if __name__ == "__main__":
    main()
