"""The Redis backend: one atomic script per step, each round trip bounded by the call's deadline."""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from pyservice.redis import DeadlineConnections

from ._backend import Backend, BackendUnavailable

__all__ = ["RedisBackend"]

# KEYS[1]: the key. ARGV: the claim, its ttl in ms. The stored record, or nil once claimed.
# (SET NX GET does this in one command only from Redis 7.0 on.)
_CLAIM = """
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
# ARGV: the claim, the record, its ttl in ms. Only the call holding the claim writes its answer.
_COMPLETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""
# ARGV: the claim. A claim that expired and was taken by another call is not deleted.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Script:
    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisBackend(Backend):
    """Records in Redis, shared by every worker and host using the server.

    Each step is one round trip: an ``EVALSHA`` of a small script (``EVAL``
    once more if Redis restarted empty), so a claim, a completion or a
    release is atomic. Records expire with ``PX``. Every round trip goes
    through :class:`pyservice.redis.DeadlineConnections`: it is set up and
    answered by the deadline the plugin gives (the call's, and at most
    ``timeout`` from now), and a connection whose answer came too late is
    dropped, never reused.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``).
        timeout: the longest one round trip may take, connecting included.
        client: a ready ``redis.Redis`` whose pool settings new connections
            copy, instead of ``url``'s.
    """

    shared = True

    def __init__(self, url: str | None = None, *, timeout: float = 0.25, client: redis.Redis | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if client is None:
            if url is None:
                raise ValueError("RedisBackend needs a url or a client, got neither")
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
        # Shown in logs and reprs: never the password.
        parts = urlsplit(url or "")
        self._where = (
            f"{parts.scheme}://{parts.hostname or ''}{':' if parts.port else ''}{parts.port or ''}{parts.path}"
            if url
            else f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        )
        self.client = client
        self.timeout = timeout
        self._bounded = DeadlineConnections(client.connection_pool)
        self._claim = _Script(_CLAIM)
        self._complete = _Script(_COMPLETE)
        self._release = _Script(_RELEASE)

    def _run(self, script: _Script, deadline: float, key: str, *args: Any) -> Any:
        try:
            try:
                return self._bounded.call(deadline, "EVALSHA", script.sha, 1, key, *args)
            except redis.exceptions.NoScriptError:
                # Redis restarted empty: EVAL loads the script again as it runs it.
                return self._bounded.call(deadline, "EVAL", script.source, 1, key, *args)
        except redis.TimeoutError as exc:
            late = deadline - time.monotonic() <= 0
            raise BackendUnavailable(f"Redis at {self._where}: {exc}", late=late) from exc
        except redis.RedisError as exc:
            # The message of a redis-py error names the host, never the password.
            raise BackendUnavailable(f"Redis at {self._where}: {type(exc).__name__}: {exc}") from exc

    def claim(self, key: str, record: bytes, ttl: float, deadline: float) -> bytes | None:
        """Claim the key in one round trip; the stored record if it was not free."""
        found = self._run(self._claim, deadline, key, record, _ms(ttl))
        return found if found is None or isinstance(found, bytes) else bytes(found)

    def complete(self, key: str, claim: bytes, record: bytes, ttl: float, deadline: float) -> bool:
        """Replace the claim by the record, in one round trip, if the claim is still there."""
        return bool(self._run(self._complete, deadline, key, claim, record, _ms(ttl)))

    def release(self, key: str, claim: bytes, deadline: float) -> None:
        """Delete the key, in one round trip, if the claim is still there."""
        self._run(self._release, deadline, key, claim)

    def ping(self, deadline: float) -> None:
        """``PING``, answered by ``deadline``."""
        try:
            self._bounded.call(deadline, "PING")
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Redis at {self._where}: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close the connections."""
        self._bounded.close()
        self.client.close()

    def __repr__(self) -> str:
        return f"<RedisBackend {self._where}>"
