"""One client process of the exactness tests: THREADS threads, CALLS calls each.

python hammer.py URL THREADS CALLS  ->  prints {"statuses": {...}, "workers": {pid: {status: n}}}
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter

import requests


def main() -> None:
    url, threads, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        session = requests.Session()
        start.wait()
        for _ in range(calls):
            answer = session.post(url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=30)
            with lock:
                results.append((answer.status_code, answer.headers.get("X-Worker", "?")))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    by_worker: dict[str, Counter[int]] = {}
    for status, pid in results:
        by_worker.setdefault(pid, Counter())[status] += 1
    print(json.dumps({"statuses": Counter(s for s, _ in results), "workers": by_worker}))


if __name__ == "__main__":
    main()
