"""``pyservice serve --reload``: restart the server when a source file changes, for development.

The server runs as a child process with the same flags; this process only
watches the ``.py`` and ``.json`` files under the current folder (polling their
modification times: no dependency, every platform) and restarts the child on a
change. A child that fails to start, a syntax error say, is started again at
the next change.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from ._server import watched_files

__all__ = ["serve_with_reload"]

#: Seconds between two looks at the files.
POLL_INTERVAL = 0.5


def serve_with_reload(argv: Sequence[str], root: str = ".") -> int:
    """Run ``pyservice`` with ``argv`` (less ``--reload``) in a child, restarting it on changes.

    Returns when this process gets SIGTERM or SIGINT, after stopping the child.
    """
    command = [sys.executable, "-m", "pyservice", *(arg for arg in argv if arg != "--reload")]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    seen = watched_files(root)
    child = subprocess.Popen(command)  # noqa: S603 - our own interpreter and the user's flags
    while not stopping:
        time.sleep(POLL_INTERVAL)
        now = watched_files(root)
        if now == seen:
            continue
        changed = sorted(path for path in now.keys() | seen.keys() if now.get(path) != seen.get(path))
        seen = now
        print(f"pyservice: {changed[0]} changed; restarting", file=sys.stderr, flush=True)
        _stop(child)
        child = subprocess.Popen(command)  # noqa: S603
    _stop(child)
    return 0


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - the server's own graceful timeout is shorter
            child.kill()
            child.wait()
