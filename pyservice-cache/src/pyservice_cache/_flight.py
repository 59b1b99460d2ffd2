"""Per-process single flight: one thread computes a missing key, the others wait."""

from __future__ import annotations

import threading

__all__ = ["Flight", "Flights"]


class Flight:
    """One computation in progress; ``entry`` is set when it produced one."""

    __slots__ = ("_landed", "entry")

    def __init__(self) -> None:
        # Held until the flight lands: a lock costs a tenth of an Event to
        # make, and every miss makes one.
        self._landed = threading.Lock()
        self._landed.acquire()
        self.entry: bytes | None = None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the flight to land; whether it did."""
        if timeout <= 0 or not self._landed.acquire(timeout=timeout):
            return False
        self._landed.release()  # for the other waiters
        return True

    def land(self) -> None:
        """Wake the waiters."""
        self._landed.release()


class Flights:
    """The computations in progress in this process, by key."""

    __slots__ = ("_flights", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

    def join(self, key: str) -> tuple[Flight, bool]:
        """The flight of ``key``, and whether the caller leads it (computes)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(self, key: str, flight: Flight) -> None:
        """End the leader's flight and wake its waiters."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.land()
