"""The backend interface: where entries live."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Backend", "BackendUnavailable"]


class BackendUnavailable(Exception):
    """The backend's store cannot be reached or did not answer in time.

    Backends raise it for every failure of their store; the plugin then runs
    the call uncached and logs a warning at most once per ``warn_interval``.
    """


class Backend(ABC):
    """Where the cache keeps its entries.

    Entries are opaque bytes with a time to live. A backend implements
    :meth:`get`, :meth:`set`, :meth:`delete` and :meth:`delete_prefix`;
    a backend shared by several processes also implements the lock methods
    (:meth:`acquire`, :meth:`release`, :meth:`wait`) so that only one
    process computes a missing entry. Every method must be thread-safe and
    must not block for long: bound every network call with a short timeout,
    and raise :class:`BackendUnavailable` when the store fails.

    Attributes:
        evictions: entries removed to respect the backend's size bounds
            (not counting expiry); ``0`` where the store does not tell.
        timeout: the longest one operation may take, in seconds (the
            network timeout of a remote store); ``0`` for a store in this
            process. The plugin starts no operation for a call with less
            time left before its deadline than this, so a store that stops
            answering never holds a call past its deadline.
    """

    evictions: int = 0
    timeout: float = 0.0

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The entry stored under ``key``, or ``None`` when there is none."""

    @abstractmethod
    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""

    @abstractmethod
    def delete(self, key: str) -> int:
        """Delete one entry; returns how many were deleted (0 or 1)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry whose key starts with ``prefix``; returns how many."""

    def acquire(self, key: str, ttl: float) -> str | None:
        """Take the lock that lets this process compute ``key``'s entry.

        The default grants it at once: a backend that only one process sees
        needs no lock beyond the plugin's own per-process one.

        Args:
            key: the entry's key.
            ttl: seconds after which the lock frees itself, should its
                holder die.

        Returns:
            A token to release the lock with, or ``None`` when another
            process holds it.
        """
        return ""

    def release(self, key: str, token: str) -> None:  # noqa: B027 - optional: see acquire()
        """Release the lock on ``key`` if ``token`` still holds it."""

    def wait(self, key: str, timeout: float) -> bytes | None:
        """Wait for another process to store ``key``'s entry.

        Returns:
            The entry once stored; ``None`` after ``timeout`` seconds or as
            soon as the lock is released without an entry (the caller then
            tries :meth:`acquire` again).
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing to release
        """Release what the backend holds (connections); the default does nothing."""
