"""The backend interface: where the records of keys live."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Backend", "BackendUnavailable"]


class BackendUnavailable(Exception):
    """The store cannot be reached, or did not answer by the deadline.

    Backends raise it for every failure of their store; the plugin then
    answers as its ``on_error`` says.

    Attributes:
        late: the call's own deadline ended the wait, not a failure of the
            store; the plugin does not leave the store alone for it.
    """

    def __init__(self, message: str, *, late: bool = False) -> None:
        super().__init__(message)
        self.late = late


class Backend(ABC):
    """Where the plugin keeps one record per key.

    The three operations are atomic per key: between two processes (two
    workers, two hosts) sharing the store, exactly one :meth:`claim` of a
    free key succeeds. Each takes the ``time.monotonic()`` deadline by which
    it must have answered; a backend that cannot answer by then raises
    :class:`BackendUnavailable`. Every method must be thread-safe.

    Attributes:
        shared: the store is seen by every process using it (Redis), not
            only this one (memory).
    """

    shared: bool = False

    @abstractmethod
    def claim(self, key: str, record: bytes, ttl: float, deadline: float) -> bytes | None:
        """Store ``record`` under ``key`` for ``ttl`` seconds if the key is free.

        Returns:
            ``None`` when the key was free and is now this call's; else the
            record stored under it, unchanged.
        """

    @abstractmethod
    def complete(self, key: str, claim: bytes, record: bytes, ttl: float, deadline: float) -> bool:
        """Replace ``claim`` by ``record`` (kept ``ttl`` seconds), if ``claim`` is still stored.

        Returns:
            ``False`` when the claim was no longer there (it expired, and
            another call may have taken the key since): nothing was written.
        """

    @abstractmethod
    def release(self, key: str, claim: bytes, deadline: float) -> None:
        """Delete the key if ``claim`` is still stored under it, so that a retry may run."""

    def ping(self, deadline: float) -> None:  # noqa: B027 - an in-process store is always there
        """Raise :class:`BackendUnavailable` unless the store answers by ``deadline``."""

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing to release
        """Release what the backend holds (connections)."""
