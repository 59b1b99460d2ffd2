from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

from pyservice.testing import free_port


class FakeClock:
    """Seconds that move only when a test says so; also a ``sleep`` that advances them."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_api(throttle: dict[str, Any] | None = None, operations: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": "things",
        "operations": operations or ["get_thing", "put_thing"],
        "exceptions": ["DoesNotExist"],
        "plugins": {"throttle": throttle or {}},
        **extra,
    }


def add_handlers(service: Any) -> Any:
    for name in service.api.operations:

        def handler(request: Any, response: Any, context: Any) -> None:
            if request.missing:
                raise service.exceptions.DoesNotExist("no such thing")
            response.ok = True

        service.operation(name)(handler)
    return service


class PrivateRedis:
    """A redis-server of our own on a free port, which a test may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="throttle-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        # Nothing written to disk: a restarted server starts empty.
        command += ["--save", "", "--appendonly", "no", "--dir", self.dir]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.025)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def freeze(self) -> None:
        """Stop the server without closing anything: connections stay open, nothing answers (SIGSTOP)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again (SIGCONT)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()  # a stopped process would not act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"
