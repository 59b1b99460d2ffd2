"""Section 2: over HTTP on 127.0.0.1, each app under a real server, driven by wrk.

All servers of the section are started first and left running (an idle
server costs nothing), then each round drives every app once, so the
rounds interleave and the ratio to the bare app under the same server
holds on a noisy machine. The workers' memory is read from /proc before
and after the load (section 5).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .apps import PATH, expected_result
from .modes import Mode
from .payloads import SMALL, SMALL_BODY
from .progress import Progress

SECTION = "http"
BENCH = Path(__file__).resolve().parents[1]
LUA = BENCH / "lua" / "post.lua"
TARGETS = {
    "bare": "suite.apps:bare_app",
    "pyservice": "suite.apps:service",
    "falcon": "suite.apps:falcon_app",
    "flask": "suite.apps:flask_app",
}
LABELS = {"bare": "bare WSGI function", "pyservice": "pyservice", "falcon": "Falcon", "flask": "Flask"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One app under one server, in its own process group."""

    app: str
    server: str
    workers: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def command(self) -> list[str]:
        common = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        if self.app == "pyservice":
            # The real thing: what users run.
            return [sys.executable, "-m", "pyservice", "serve", TARGETS[self.app], "--server", self.server, *common]
        return [sys.executable, "-m", "suite.serve", self.server, TARGETS[self.app], *common]

    def start(self) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            self.command, cwd=BENCH, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, seconds: float = 30.0) -> None:
        """Wait until the app answers the benchmark's call correctly."""
        deadline = time.monotonic() + seconds
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.server} serving {self.app} exited:\n{self.output()}")
            try:
                status, body = post(self.port, SMALL_BODY)
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            if status != 200 or orjson.loads(body) != expected_result(SMALL):
                raise RuntimeError(f"{self.server} serving {self.app} answered {status}: {body[:300]!r}")
            return
        raise RuntimeError(f"{self.server} serving {self.app} did not answer within {seconds}s ({last})")

    def output(self) -> str:
        if self.log is None or self.log.closed:
            return ""
        self.log.seek(0)
        return str(self.log.read().decode("utf-8", "replace"))

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group we started, by its id
                process.wait()
        if process is not None:
            # Workers a server left behind (granian's, if its main process died first).
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process = None
        if self.log is not None:
            self.log.close()

    def workers_memory(self) -> dict[str, float]:
        """The largest current and peak RSS among the server's worker processes, in MiB."""
        assert self.process is not None
        workers = descendants(self.process.pid)
        rss = [status_kib(pid, "VmRSS") for pid in workers]
        hwm = [status_kib(pid, "VmHWM") for pid in workers]
        return {
            "workers": len(workers),
            "rss_mib": max(rss, default=0) / 1024,
            "peak_rss_mib": max(hwm, default=0) / 1024,
        }


def post(port: int, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", PATH, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def descendants(root: int) -> list[int]:
    """Every process below ``root``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wrk_version() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        return "not installed"
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "wrk"


def drive(
    port: int,
    seconds: float,
    connections: int,
    body: bytes = SMALL_BODY,
    path: str = PATH,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One wrk run POSTing ``body`` (and ``headers``) to ``path``; the Lua script prints its figures as JSON."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
        "-s", str(LUA), f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_BODY": body.decode(),
        "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in (headers or {}).items()),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH-RESULT "))
            result["requests_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def run(mode: Mode, progress: Progress, workers: int = 2) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        progress.note(SECTION, "skipped: wrk is not installed (apt-get install wrk)")
        return {"rows": [], "memory": []}
    servers = [Server(app, server, workers) for server in mode.http_servers for app in mode.http_apps]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        progress.step(SECTION, f"{len(servers)} servers up, {workers} workers each")
        # A short warm-up each, so no worker answers its first calls during a measurement.
        if mode.http_warmup:
            for server in servers:
                drive(server.port, mode.http_warmup, mode.http_connections)
        before = {(s.server, s.app): s.workers_memory() for s in servers}
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {(s.server, s.app): [] for s in servers}
        for number in range(mode.http_rounds):
            shift = number % len(servers)
            for server in servers[shift:] + servers[:shift]:
                result = drive(server.port, mode.http_seconds, mode.http_connections)
                runs[(server.server, server.app)].append(result)
                progress.step(
                    SECTION,
                    f"round {number + 1}/{mode.http_rounds} {server.server:<8} {server.app:<9} "
                    f"{result['requests_per_s']:8.0f} req/s",
                )
        after = {(s.server, s.app): s.workers_memory() for s in servers}
    finally:
        for server in servers:
            server.stop()
    rows = []
    for server_name in mode.http_servers:
        bare = statistics.median(r["requests_per_s"] for r in runs[(server_name, "bare")])
        for app in mode.http_apps:
            results = runs[(server_name, app)]
            rates = [r["requests_per_s"] for r in results]
            median = statistics.median(rates)
            rows.append(
                {
                    "server": server_name,
                    "app": app,
                    "label": LABELS[app],
                    "requests_per_s": median,
                    "requests_per_s_min": min(rates),
                    "requests_per_s_max": max(rates),
                    "ratio": median / bare,
                    "p50_ms": statistics.median(r["p50_us"] for r in results) / 1000,
                    "p90_ms": statistics.median(r["p90_us"] for r in results) / 1000,
                    "p99_ms": statistics.median(r["p99_us"] for r in results) / 1000,
                    "p999_ms": statistics.median(r["p999_us"] for r in results) / 1000,
                    "requests": sum(r["requests"] for r in results),
                    "errors": sum(
                        r[k]
                        for r in results
                        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
                    ),
                }
            )
    memory = [
        {
            "server": key[0],
            "app": key[1],
            "label": LABELS[key[1]],
            "requests": sum(r["requests"] for r in runs[key]),
            "rss_before_mib": before[key]["rss_mib"],
            "rss_after_mib": after[key]["rss_mib"],
            "peak_rss_mib": after[key]["peak_rss_mib"],
            "processes": after[key]["workers"],
        }
        for key in runs
    ]
    return {
        "rows": rows,
        "memory": memory,
        "settings": {
            "workers": workers,
            "connections": mode.http_connections,
            "seconds": mode.http_seconds,
            "rounds": mode.http_rounds,
            "wrk_threads": 1,
        },
    }
