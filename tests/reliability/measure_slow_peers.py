"""Measure each server with slow peers connected: normal calls' latency, and how long SIGTERM takes.

For each server (pyservice, gunicorn, granian; 2 workers; the same small
app; every other setting at ``pyservice serve``'s default: a 5 s request
deadline, a 10 s graceful timeout) and each N (0, 250, 1000):

1. open N idle keep-alive connections (each made one call; gunicorn closes
   them), N connections that stall halfway through their body and N that
   trickle theirs at one byte every 0.5 s;
2. for ``--window`` seconds, make normal calls from two threads, each on a
   new connection, one every 50 ms per thread, each with a 5 s timeout;
   count how many are answered 200 and their p50/p99; count the slow peers
   answered 408 in that time;
3. open N fresh stalled and N fresh trickling connections, SIGTERM the
   server and time how long it takes to exit.

Run from the repository: ``/work/venv/bin/python tests/reliability/measure_slow_peers.py``
(``--servers``, ``--counts``, ``--window`` to change what is measured). It
prints a Markdown table. The machine's noise shows in the latencies; the
answered counts and stop times are what separate the servers.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import NormalCalls, await_answers, call, close_all, idle, parse, stall, trickling  # noqa: E402
from pyservice._prefork import raise_open_files_limit  # noqa: E402
from pyservice.testing import LiveServer  # noqa: E402

APPS = HERE / "apps"
TARGET = "slow_peers_app:service"
REQUEST_TIMEOUT = 5.0  # pyservice serve's defaults
GRACEFUL_TIMEOUT = 10.0
CALL_TIMEOUT = 5.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def warm_up(server: LiveServer, seconds: float = 30.0) -> None:
    """Until both workers answer (granian accepts before its workers are ready)."""
    deadline = time.monotonic() + seconds
    pids: set[int] = set()
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            status, body, _ = call(server, timeout=2)
        except OSError:
            continue
        if status == 200:
            pids.add(body["pid"])


def idle_tolerant(server: LiveServer, count: int) -> tuple[list[socket.socket], int]:
    """:func:`peers.idle`, one at a time, counting the connections whose call was not answered."""
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(count):
        try:
            socks += idle(server, 1)
        except (OSError, AssertionError):
            refused += 1
    return socks, refused


def measure(kind: str, count: int, window: float) -> dict[str, object]:
    row: dict[str, object] = {"server": kind, "n": count}
    with LiveServer(
        TARGET,
        server=kind,
        workers=2,
        request_timeout=REQUEST_TIMEOUT,
        graceful_timeout=GRACEFUL_TIMEOUT,
        cwd=APPS,
        start_timeout=60,
    ) as server:
        warm_up(server)
        quiet, refused = idle_tolerant(server, count)
        row["idle refused"] = refused
        slow = stall(server, count) + trickling(server, count)
        reader = threading.Thread(target=await_answers, args=(slow, window), daemon=True)
        reader.start()
        callers = [NormalCalls(server, interval=0.05, limit=100_000, timeout=CALL_TIMEOUT) for _ in range(2)]
        for caller in callers:
            caller.__enter__()
        time.sleep(window)
        for caller in callers:
            caller.__exit__(None, None, None)
        reader.join(timeout=window + 30)
        results = [result for caller in callers for result in caller.results]
        answered = [seconds for status, seconds in results if status == 200]
        row["answered"] = f"{len(answered)}/{len(results)}"
        row["p50"] = statistics.median(answered) * 1000 if answered else None
        row["p99"] = percentile(answered, 0.99) * 1000 if answered else None
        row["max"] = max(answered) * 1000 if answered else None
        timeouts = sum(1 for peer in slow if peer.data and parse(peer.data).status == 408)
        row["slow 408"] = f"{timeouts}/{len(slow)}" if slow else "-"
        close_all(peer.sock for peer in slow)

        # The stop, with slow peers connected afresh and the idle ones still open.
        slow = stall(server, count) + trickling(server, count)
        reader = threading.Thread(target=await_answers, args=(slow, GRACEFUL_TIMEOUT + 10), daemon=True)
        reader.start()
        assert server.process is not None
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=GRACEFUL_TIMEOUT + 30)
            row["stop"] = f"{time.monotonic() - started:.1f} s"
        except subprocess.TimeoutExpired:  # reported in the table; LiveServer kills it on exit
            row["stop"] = f"> {GRACEFUL_TIMEOUT + 30:.0f} s"
        reader.join(timeout=GRACEFUL_TIMEOUT + 30)
        close_all(peer.sock for peer in slow)
        close_all(quiet)
    return row


def table(rows: list[dict[str, object]]) -> str:
    def ms(value: object) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        "| server | N stalled + N trickling + N idle | normal calls answered | p50 ms | p99 ms | max ms"
        " | slow peers answered 408 | SIGTERM to exit | idle calls not answered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['server']} | {row['n']} | {row['answered']} | {ms(row['p50'])} | {ms(row['p99'])}"
            f" | {ms(row['max'])} | {row['slow 408']} | {row['stop']} | {row['idle refused']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", default="pyservice,gunicorn,granian")
    parser.add_argument("--counts", default="0,250,1000")
    parser.add_argument("--window", type=float, default=8.0, help="seconds of normal calls (default 8)")
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    limit = raise_open_files_limit()
    if limit < 4 * max(counts) + 500:
        raise SystemExit(f"the open-files limit is {limit}; N={max(counts)} needs {4 * max(counts) + 500}")
    rows = []
    for kind in args.servers.split(","):
        for count in counts:
            row = measure(kind, count, args.window)
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
    print(
        f"2 workers each; request deadline {REQUEST_TIMEOUT:g} s, graceful timeout {GRACEFUL_TIMEOUT:g} s;"
        f" normal calls for {args.window:g} s from 2 threads, 5 s timeout each\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
