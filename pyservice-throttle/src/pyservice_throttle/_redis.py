"""The Redis backend: the GCRA step as one server-side Lua script."""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import redis
from pyservice.redis import DeadlineConnections
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._backend import Backend, BackendUnavailable

__all__ = ["GCRA_SCRIPT", "RedisBackend"]

#: KEYS[1]: the key. ARGV: now, interval, capacity (integer microseconds).
#: Returns {allowed (0 or 1), tat}. Redis runs a script atomically, so the
#: read and the write of one key can never interleave with another caller's.
#: The key expires when its bucket is full again: an absent key reads as full.
GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
if new_tat - now > capacity then
  return {0, string.format('%d', tat)}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, string.format('%d', new_tat)}
"""


class RedisBackend(Backend):
    """Timestamps in Redis, shared by every worker and host using the server.

    Each call is one round trip (``EVALSHA`` of :data:`GCRA_SCRIPT`). Keys
    are ``prefix`` plus a BLAKE2b digest of the caller's key, so identities
    (addresses, header values) are not stored in the clear. Redis errors,
    refused connections and timeouts are raised as
    :class:`~pyservice_throttle.BackendUnavailable`, for the plugin's
    ``on_error`` policy.

    Args:
        url: a ``redis://`` or ``rediss://`` URL.
        prefix: prepended to every key.
        timeout: seconds allowed for connecting and for each answer; the
            client never retries on its own, so a call waits at most this
            long (twice: connect, then answer).
        client: an existing ``redis.Redis`` to use instead of ``url``; its
            own timeouts then apply.

    Attributes:
        timeout: the longest wait for one answer of Redis without a deadline
            (``timeout``, or the given client's socket timeout, infinite
            when it has none); :meth:`take_within` waits less when the call
            has less time left.
    """

    shared = True
    timeout: float
    _script: Any

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "pyservice:throttle:",
        timeout: float = 0.1,
        client: redis.Redis | None = None,
    ) -> None:
        if client is None:
            if url is None:
                raise ValueError("RedisBackend needs a url or a client, got neither")
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # redis-py retries with backoff by default: that would multiply
                # the time a call can hang while Redis is away.
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            )
            self.timeout = timeout
        else:
            # A given client keeps its own timeouts; a call's deadline is the only bound added to them.
            self.timeout = client.connection_pool.connection_kwargs.get("socket_timeout") or math.inf
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(GCRA_SCRIPT)
        self._bounded = DeadlineConnections(client.connection_pool)

    def redis_key(self, key: str) -> str:
        """The Redis key that holds ``key``'s timestamp."""
        return self.prefix + hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        """Run :data:`GCRA_SCRIPT` for ``key``: one atomic round trip, within :attr:`timeout`."""
        if math.isinf(self.timeout):
            # A given client without a socket timeout: its own command path, which waits as it does.
            try:
                allowed, tat = self._script(keys=[self.redis_key(key)], args=[now, interval, capacity])
            except redis.RedisError as exc:
                # The message of a redis-py error names the host, never the password.
                raise BackendUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
            return allowed == 1, int(tat)
        # The short way to the socket (about half redis.Redis's CPU per command), bounded by
        # the socket's timeouts as redis.Redis is: a deadline from now would also count the
        # time this thread waits for the GIL.
        return self._take(math.inf, key, now, interval, capacity)

    def take_within(self, key: str, now: int, interval: int, capacity: int, timeout: float) -> tuple[bool, int]:
        """:meth:`take`, waiting at most ``timeout`` seconds for Redis, connecting included.

        With ``timeout`` at least the backend's own, this is :meth:`take`.
        Otherwise the script runs on a connection set up and awaited within
        ``timeout`` only; one whose answer did not come in time is closed,
        never reused. A script sent to a Redis that froze runs when it
        resumes, so a call that timed out may still count: the limit errs on
        the strict side.

        Raises:
            BackendUnavailable: Redis failed, or did not answer in time
                (``timeout`` 0: without asking it).
        """
        if timeout >= self.timeout:
            return self.take(key, now, interval, capacity)
        if timeout <= 0:
            raise BackendUnavailable("Redis: not asked, the call's deadline has passed")
        return self._take(time.monotonic() + timeout, key, now, interval, capacity)

    def _take(self, deadline: float, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        args = (1, self.redis_key(key), now, interval, capacity)
        try:
            try:
                allowed, tat = self._bounded.call(deadline, "EVALSHA", self._script.sha, *args)
            except redis.exceptions.NoScriptError:
                # Redis restarted empty: EVAL loads the script again as it runs it.
                allowed, tat = self._bounded.call(deadline, "EVAL", GCRA_SCRIPT, *args)
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc
        return allowed == 1, int(tat)

    def close(self) -> None:
        """Close the connections of the client's pool, and those of calls with a deadline."""
        self._bounded.close()
        self.client.close()

    def __repr__(self) -> str:
        return f"<RedisBackend prefix={self.prefix!r}>"
