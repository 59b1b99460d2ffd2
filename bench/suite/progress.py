"""Progress lines while the suite runs, with the time spent so far."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints one line per step: elapsed seconds, section, what happened."""

    def __init__(self, quiet: bool = False) -> None:
        self.started = time.monotonic()
        self.quiet = quiet
        self.notes: list[str] = []

    def step(self, section: str, message: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:6.1f}s] {section:<10} {message}", file=sys.stderr, flush=True)

    def note(self, section: str, message: str) -> None:
        """A skipped case or a caveat: printed now and listed in the results."""
        self.notes.append(f"{section}: {message}")
        self.step(section, f"NOTE {message}")
