"""Redis round trips bounded by a call's deadline, setting up the connection included.

For plugins that keep state in Redis (pyservice-throttle's counters,
pyservice-auth's nonces) and must answer by the call's deadline even when
Redis stops answering. It needs the ``redis`` package, which the core does not
install: a plugin that imports this module depends on ``redis`` itself.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import redis

__all__ = ["DeadlineConnections"]


class DeadlineConnections:
    """Connections to one Redis server for calls that must be answered by a deadline.

    redis-py bounds every wait by the client's own socket timeouts, and a new
    connection's set-up (TCP connect, then the handshake's answers) by them
    too, so a frozen Redis holds a call for that long whatever its deadline.
    Here a connection is set up with the time the call has left as its
    timeouts (never more than the client's own), and each answer is awaited
    until the deadline only. A connection that failed or did not answer in
    time is closed and dropped: its late answer would be read as the next
    command's. The others are kept for the next call. A kept connection
    found closed (Redis restarted since) is replaced once, as redis-py's
    own client retries a connection error once, if time is left.

    Each call costs about half of ``redis.Redis``'s own command path (a GET
    here: 45 µs of CPU against 79, docs/performance.md): it takes a
    connection from a list, sends, and waits on the socket, without the
    client's pool bookkeeping, retry wrapper and event hooks.

    Args:
        pool: the client's connection pool, whose connection class and
            settings (address, TLS, password, database) new connections
            copy.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._connection_class: Any = pool.connection_class
        self._kwargs: dict[str, Any] = dict(pool.connection_kwargs)
        self._connect_timeout: float = self._kwargs.get("socket_connect_timeout") or math.inf
        self._socket_timeout: float = self._kwargs.get("socket_timeout") or math.inf
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def call(self, deadline: float, *command: Any) -> Any:
        """Send ``command`` and return Redis's answer, by ``deadline`` (``time.monotonic()``) at the latest.

        ``math.inf`` sets no deadline: the connection's own timeouts (the
        client's) bound each wait, as they bound ``redis.Redis``'s commands.

        Raises:
            redis.TimeoutError: the deadline came first.
            redis.RedisError: Redis failed, or answered an error.
        """
        fresh = False
        while True:
            connection, kept = self._connection(deadline, fresh)
            try:
                connection.send_command(*command)
                left = deadline - time.monotonic()
                # The socket's own timeout bounds the wait when it ends first; else wait
                # for the answer's first byte by the deadline (an extra poll()).
                own = connection.socket_timeout
                if left <= 0 or (left < (math.inf if own is None else own) and not connection.can_read(timeout=left)):
                    raise redis.TimeoutError(f"no answer within the call's time left ({max(left, 0.0):.3f} s)")
                answer = connection.read_response()
            except redis.ResponseError:
                # An error answer (NOSCRIPT, ...) was read whole: the connection is in step.
                self._keep(connection)
                raise
            except redis.ConnectionError:
                connection.disconnect()
                if kept and deadline > time.monotonic():
                    fresh = True  # closed while kept: the command never reached a live server
                    continue
                raise
            except BaseException:
                connection.disconnect()
                raise
            self._keep(connection)
            return answer

    def _connection(self, deadline: float, fresh: bool = False) -> tuple[Any, bool]:
        # A connection, and whether it was kept from an earlier call.
        with self._lock:
            if self._pid != os.getpid():
                # A forked worker never shares a socket with its parent.
                self._idle.clear()
                self._pid = os.getpid()
            connection = self._idle.pop() if self._idle and not fresh else None
        if connection is not None:
            return connection, True
        left = deadline - time.monotonic()
        if left <= 0:
            raise redis.TimeoutError("no time left to connect before the call's deadline")
        connection = self._connection_class(
            **{
                **self._kwargs,
                "socket_connect_timeout": _finite(min(left, self._connect_timeout)),
                # Also what later reads of a partly arrived answer wait for: never more than the
                # client's own timeout, and each answer's first byte is awaited by the deadline.
                "socket_timeout": _finite(min(left, self._socket_timeout)),
            }
        )
        try:
            connection.connect()
        except BaseException:
            connection.disconnect()
            raise
        return connection, False

    def _keep(self, connection: Any) -> None:
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.disconnect()

    def __del__(self) -> None:
        # As redis-py's pools do: a socket left to the garbage collector is a ResourceWarning.
        try:
            self.close()
        except Exception:  # noqa: S110 - nothing to do about it at collection time
            pass


def _finite(seconds: float) -> float | None:
    # redis-py (and the socket) take None, not infinity, for "no timeout".
    return None if math.isinf(seconds) else seconds
