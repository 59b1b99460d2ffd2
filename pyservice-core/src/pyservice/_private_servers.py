"""Redis and PostgreSQL servers of a test's own, which it may stop, restart and freeze.

Fault tests must not stop or freeze the machine's servers: other tests, other
projects, use them. These run from the same binaries, on free loopback ports,
keep their files in a temporary directory, and are gone after ``close()``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ._ports import free_port

__all__ = ["PrivatePostgres", "PrivateRedis", "PrivateServerUnavailable"]


class PrivateServerUnavailable(RuntimeError):
    """The server's binaries are not installed here.

    Under pytest, ``pyservice.pytest_plugin.unavailable()`` turns it into a
    skip (or a failure where ``PYSERVICE_REQUIRE_SERVICES=1``); the
    ``private_redis`` and ``private_postgres`` fixtures do so.
    """


def _wait_for(port: int, probe: bytes | None, expect: bytes | None, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if probe is None:
                    return
                sock.sendall(probe)
                if expect is None or sock.recv(64).startswith(expect):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {seconds}s")


class _PrivateServer:
    port: int

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _PrivateServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class PrivateRedis(_PrivateServer):
    """A ``redis-server`` on a free port that keeps nothing on disk.

    ``with PrivateRedis() as server:`` starts it and closes it after; or call
    ``start`` and ``close``. ``stop`` and ``start`` again
    restart it on the same port (empty); ``freeze`` (SIGSTOP) leaves its
    port and connections open with nothing answering, as a hung server does.

    Raises:
        PrivateServerUnavailable: no ``redis-server`` on ``PATH``.
    """

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise PrivateServerUnavailable("redis-server is not on PATH")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pyservice-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers ``PING``."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603 - the redis-server found on PATH, our arguments
            [*command, "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(self.port, b"PING\r\n", b"+PONG")

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections and data; the server answers nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the server answers again, what waited included."""
        self._signal(signal.SIGCONT)

    def _signal(self, number: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(number)

    def stop(self) -> None:
        """Stop the server (thawed first: a frozen one would not handle SIGTERM)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres(_PrivateServer):
    """A PostgreSQL cluster made by ``initdb`` in a temporary directory, served on a free port.

    Trust authentication for the user ``postgres``; ``fsync`` off (its data
    is thrown away). Run as root, it runs as the ``postgres`` user, as
    PostgreSQL requires. ``freeze`` stops the postmaster and every
    backend: freezing the postmaster alone leaves the backends answering.

    Raises:
        PrivateServerUnavailable: no ``initdb`` (under
            ``/usr/lib/postgresql/*/bin`` or on ``PATH``).
    """

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
        if not found[-1]:
            raise PrivateServerUnavailable("PostgreSQL's initdb is not under /usr/lib/postgresql/*/bin nor on PATH")
        self.bin = Path(found[-1]).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pyservice-pg-"))
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        """A SQLAlchemy URL for psycopg 3: ``postgresql+psycopg://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """The libpq connection string: ``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 - PostgreSQL's own tools, our arguments
            [*self._as_postgres, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.dir,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        _wait_for(self.port, None, None)

    def pids(self) -> list[int]:
        """The postmaster's pid and its children's (the backends)."""
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOP to the postmaster and every backend: connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT to the postmaster and every backend."""
        self._signal(signal.SIGCONT)

    def _signal(self, number: int) -> None:
        # The postmaster first, its children listed after: a stopped postmaster
        # forks no backend that the list would miss.
        try:
            postmaster = self.pids()[0]
            os.kill(postmaster, number)
            children = self.pids()[1:]
        except (OSError, ValueError):
            return  # not running
        for pid in children:
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass  # a backend that ended since it was listed

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop`` (``fast``: sessions are ended; ``immediate``: as a crash)."""
        self.thaw()
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # not running

    def close(self) -> None:
        """Stop the server and remove its directory (again: nothing)."""
        if self.dir.exists():
            self.stop("immediate")
            shutil.rmtree(self.dir, ignore_errors=True)
