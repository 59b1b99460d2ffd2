"""A PostgreSQL server of the test's own, which it may freeze (SIGSTOP) and thaw.

The machine's PostgreSQL is shared: tests never stop or freeze it. This one
runs from the same binaries, in a temporary directory, on a free port.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from pyservice.pytest_plugin import unavailable
from pyservice.testing import free_port
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool


class PrivatePostgres:
    """``initdb`` in a temporary directory, ``pg_ctl start`` on a free port; skips without the binaries."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
        if not found[-1]:
            unavailable("PostgreSQL's initdb", "no /usr/lib/postgresql/*/bin/initdb and none on PATH")
        self.bin = Path(found[-1]).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pssa-pg-"))
        # PostgreSQL refuses to run as root; run it as its own user when we are root.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120, cwd=self.dir
        )

    def pids(self) -> list[int]:
        """The postmaster and every backend: freezing the postmaster alone leaves running backends answering."""
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, number: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass  # a backend that ended since pgrep listed it

    def sessions(self, application_name: str) -> list[str]:
        """The states of the server sessions of ``application_name`` (``pg_stat_activity.state``)."""
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                query = text("SELECT state FROM pg_stat_activity WHERE application_name = :name")
                return list(connection.scalars(query, {"name": application_name}))
        finally:
            engine.dispose()

    def close(self) -> None:
        try:
            self.thaw()
        except (OSError, ValueError):
            pass
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
