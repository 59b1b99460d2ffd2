"""The Redis backend: JSON entries with PX TTLs, and a lock per missing key."""

from __future__ import annotations

import math
import secrets
import time
from urllib.parse import urlsplit

import redis
from pyservice.redis import DeadlineConnections
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._backend import Backend, BackendUnavailable

__all__ = ["RedisBackend"]

# Deletes the lock only if it still holds our token: a holder whose lock
# expired must not delete the lock another process has taken since.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
_SCAN_BATCH = 500
# The deadline of GET and SET: none beyond the socket's own timeouts, as redis.Redis's commands have.
# (A deadline counted from the call would also count the time a thread waits for the GIL.)
_SOCKET_TIMEOUTS_ONLY = math.inf
_FIRST_POLL = 0.005
_LAST_POLL = 0.05


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class RedisBackend(Backend):
    """Entries in Redis, shared by every process and host that uses it.

    Entries are the plugin's JSON bytes with a ``PX`` expiry; nothing is
    ever unpickled. A missing key is computed by one process at a time: the
    first takes ``lock:<key>`` with ``SET NX PX`` and a random token, the
    others poll for the entry, and the lock is released only by its holder
    (a compare-and-delete script). Every command is bounded by
    ``socket_timeout``; failures raise :class:`BackendUnavailable`.

    Deleting by prefix walks the database with ``SCAN``: use a database (or
    at least a prefix) of its own. Redis Cluster is not supported.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``,
            ``unix://``).
        socket_timeout: seconds each connect and each command may take. A
            command may dial once more on a broken pooled connection, so
            :attr:`timeout` is twice this: the plugin sends no command for a
            call with less time left than that.
        client: a ready ``redis.Redis`` to use instead of ``url``'s; it
            should have short timeouts of its own.
    """

    def __init__(self, url: str, *, socket_timeout: float = 0.1, client: redis.Redis | None = None) -> None:
        if socket_timeout <= 0:
            raise ValueError(f"socket_timeout must be positive, got {socket_timeout}")
        parts = urlsplit(url)
        # Shown in logs and reprs: never the password.
        self._where = (
            f"{parts.scheme}://{parts.hostname or ''}{':' if parts.port else ''}{parts.port or ''}{parts.path}"
        )
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                # One retry on a broken connection re-dials a pooled socket
                # the server closed (a restart); timeouts are not retried, so
                # a slow server costs one socket_timeout per command at most.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
        self.client = client
        # A command that finds its pooled connection broken dials again once:
        # a connect and the command, each within socket_timeout.
        self.timeout = 2 * socket_timeout
        # GET and SET, every call's commands, take the short way to the socket
        # (half redis.Redis's CPU per command); the rest go through the client.
        self._bounded = DeadlineConnections(client.connection_pool)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _lock_key(key: str) -> str:
        # Outside the entries' prefixes, so invalidation never deletes a lock.
        return "lock:" + key

    def get(self, key: str) -> bytes | None:
        """The entry under ``key``."""
        try:
            value: bytes | None = self._bounded.call(_SOCKET_TIMEOUTS_ONLY, "GET", key)
        except redis.RedisError as exc:
            raise BackendUnavailable(f"GET on {self._where} failed: {type(exc).__name__}: {exc}") from exc
        return value

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` with a ``PX`` expiry of ``ttl`` seconds."""
        try:
            self._bounded.call(_SOCKET_TIMEOUTS_ONLY, "SET", key, value, "PX", max(1, int(ttl * 1000)))
        except redis.RedisError as exc:
            raise BackendUnavailable(f"SET on {self._where} failed: {type(exc).__name__}: {exc}") from exc

    def delete(self, key: str) -> int:
        """Delete one entry."""
        try:
            return int(self.client.delete(key))
        except redis.RedisError as exc:
            raise BackendUnavailable(f"DEL on {self._where} failed: {type(exc).__name__}: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry under ``prefix``, in batches found by ``SCAN``."""
        deleted = 0
        try:
            batch: list[bytes] = []
            for key in self.client.scan_iter(match=_glob_escape(prefix) + "*", count=_SCAN_BATCH):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    deleted += int(self.client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(self.client.unlink(*batch))
        except redis.RedisError as exc:
            raise BackendUnavailable(f"SCAN/UNLINK on {self._where} failed: {type(exc).__name__}: {exc}") from exc
        return deleted

    def acquire(self, key: str, ttl: float) -> str | None:
        """``SET lock:<key> <token> NX PX <ttl>``; the token, or ``None`` if held."""
        token = secrets.token_hex(16)
        try:
            taken = self.client.set(self._lock_key(key), token, nx=True, px=max(1, int(ttl * 1000)))
        except redis.RedisError as exc:
            raise BackendUnavailable(f"SET NX on {self._where} failed: {type(exc).__name__}: {exc}") from exc
        return token if taken else None

    def release(self, key: str, token: str) -> None:
        """Delete the lock if ``token`` still holds it."""
        try:
            self._release(keys=[self._lock_key(key)], args=[token])
        except redis.RedisError as exc:
            raise BackendUnavailable(f"EVALSHA on {self._where} failed: {type(exc).__name__}: {exc}") from exc

    def wait(self, key: str, timeout: float) -> bytes | None:
        """Poll for the entry (backing off from 5 to 50 ms) while the lock is held."""
        deadline = time.monotonic() + timeout
        delay = _FIRST_POLL
        lock = self._lock_key(key)
        while True:
            try:
                value, holder = self.client.mget(key, lock)
            except redis.RedisError as exc:
                raise BackendUnavailable(f"MGET on {self._where} failed: {type(exc).__name__}: {exc}") from exc
            if value is not None:
                return value if isinstance(value, bytes) else value.encode()
            remaining = deadline - time.monotonic()
            if holder is None or remaining <= 0:
                return None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _LAST_POLL)

    def close(self) -> None:
        """Close the pooled connections."""
        self._bounded.close()
        self.client.close()

    def __repr__(self) -> str:
        return f"<RedisBackend {self._where}>"
