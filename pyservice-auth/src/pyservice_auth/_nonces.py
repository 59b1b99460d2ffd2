"""Nonce stores: where signed requests' nonces are remembered to refuse replays."""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable

import redis
from pyservice.redis import DeadlineConnections
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["MemoryNonceStore", "NonceStore", "NonceStoreUnavailable", "RedisNonceStore"]


class NonceStoreUnavailable(Exception):
    """The nonce store cannot say whether a nonce is new; the call is refused (fail closed)."""


class NonceStore:
    """Remembers nonces for a while, and says whether one is new, atomically.

    Subclass it to keep nonces elsewhere. ``shared`` says whether every
    worker process (and host) sees the same nonces; the plugin refuses a
    store that is not shared under several worker processes.
    """

    shared: bool = False

    def add(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds.

        Args:
            key: the nonce, scoped by its key id (``<key id>:<nonce>``).
            ttl: seconds to remember it.

        Returns:
            ``True`` when ``key`` was new and is now recorded, ``False``
            when it was already there.

        Raises:
            NonceStoreUnavailable: the store cannot tell.
        """
        raise NotImplementedError

    def add_within(self, key: str, ttl: float, timeout: float) -> bool:
        """:meth:`add`, for a call that must be answered within ``timeout`` seconds.

        The plugin calls it instead of :meth:`add` when the call has a
        deadline, with the time the call has left (0 once it has passed). A
        store that talks to a server overrides it to wait at most ``timeout``
        (and at most its own timeout); the default calls :meth:`add`.

        Args:
            key: as for :meth:`add`.
            ttl: as for :meth:`add`.
            timeout: the seconds the call has left.

        Returns:
            What :meth:`add` returns.

        Raises:
            NonceStoreUnavailable: the store cannot tell in time.
        """
        return self.add(key, ttl)

    def close(self) -> None:
        """Release connections; the default has none."""


class MemoryNonceStore(NonceStore):
    """Nonces in this process's memory, bounded in number.

    Only correct with one worker process: another process does not see
    these nonces, so a replay sent to it would pass.

    Args:
        max_entries: the most nonces kept at once; when that many are still
            live, new calls are refused (fail closed) rather than forgetting
            a live nonce.
        clock: monotonic seconds; for tests.
    """

    shared = False

    def __init__(self, max_entries: int = 1_000_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._clock = clock
        self._expiries: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def add(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; see :meth:`NonceStore.add`."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            expiry = self._expiries.get(key)
            if expiry is not None and expiry > now:
                return False
            if len(self._expiries) >= self.max_entries:
                raise NonceStoreUnavailable(f"the memory nonce store holds {self.max_entries} live nonces")
            expiry = now + ttl
            self._expiries[key] = expiry
            heapq.heappush(self._heap, (expiry, key))
            return True

    def _purge(self, now: float) -> None:
        heap = self._heap
        expiries = self._expiries
        while heap and heap[0][0] <= now:
            expiry, key = heapq.heappop(heap)
            if expiries.get(key) == expiry:
                del expiries[key]

    def __len__(self) -> int:
        return len(self._expiries)

    def __repr__(self) -> str:
        return f"<MemoryNonceStore {len(self._expiries)}/{self.max_entries}>"


class RedisNonceStore(NonceStore):
    """Nonces in Redis, shared by every worker and host using the server.

    Each check is one ``SET key 1 NX PX ttl``: Redis records the nonce and
    says whether it was new in a single atomic step, so two workers given
    the same request at once cannot both accept it. Errors and timeouts are
    raised as :class:`NonceStoreUnavailable`; redis-py's own retries are off
    so a call waits at most ``timeout`` to connect and ``timeout`` for the
    answer.

    Args:
        url: a ``redis://`` or ``rediss://`` URL.
        prefix: prepended to every key.
        timeout: seconds allowed to connect and for each answer.
        client: an existing ``redis.Redis`` to use instead of ``url``.

    Attributes:
        timeout: the longest wait for one answer of Redis without a deadline
            (``timeout``, or the given client's socket timeout, infinite
            when it has none); :meth:`add_within` waits less when the call
            has less time left.
    """

    shared = True
    timeout: float

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "pyservice:auth:nonce:",
        timeout: float = 0.25,
        client: redis.Redis | None = None,
    ) -> None:
        if client is None:
            if url is None:
                raise ValueError("RedisNonceStore needs a url or a client, got neither")
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            )
            self.timeout = timeout
        else:
            # A given client keeps its own timeouts; a call's deadline is the only bound added to them.
            self.timeout = client.connection_pool.connection_kwargs.get("socket_timeout") or math.inf
        self.client = client
        self.prefix = prefix
        self._bounded = DeadlineConnections(client.connection_pool)

    def add(self, key: str, ttl: float) -> bool:
        """``SET prefix+key 1 NX PX ttl``; see :meth:`NonceStore.add`."""
        try:
            created = self.client.set(self.prefix + key, b"1", nx=True, px=max(1, math.ceil(ttl * 1000)))
        except redis.RedisError as exc:
            # A redis-py message names the host and the error, never the password.
            raise NonceStoreUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
        return bool(created)

    def add_within(self, key: str, ttl: float, timeout: float) -> bool:
        """:meth:`add`, waiting at most ``timeout`` seconds for Redis, connecting included.

        With ``timeout`` at least the store's own, this is :meth:`add`.
        Otherwise the command runs on a connection set up and awaited within
        ``timeout`` only; one whose answer did not come in time is closed,
        never reused.

        Raises:
            NonceStoreUnavailable: Redis failed, or did not answer in time
                (``timeout`` 0: without asking it).
        """
        if timeout >= self.timeout:
            return self.add(key, ttl)
        if timeout <= 0:
            raise NonceStoreUnavailable("Redis: not asked, the call's deadline has passed")
        deadline = time.monotonic() + timeout
        command = ("SET", self.prefix + key, b"1", "NX", "PX", max(1, math.ceil(ttl * 1000)))
        try:
            created = self._bounded.call(deadline, *command)
        except redis.RedisError as exc:
            raise NonceStoreUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
        # SET ... NX answers OK when it set the key, nil when the key was there.
        return created is not None

    def close(self) -> None:
        """Close the connections of the client's pool, and those of calls with a deadline."""
        self._bounded.close()
        self.client.close()

    def __repr__(self) -> str:
        return f"<RedisNonceStore prefix={self.prefix!r}>"
