"""pyservice.testing's private servers: started, frozen, thawed, restarted and removed."""

from __future__ import annotations

import os
import socket
import time

import pytest

redis = pytest.importorskip("redis", reason="the private Redis tests talk to it with redis-py")


def test_a_private_redis_answers_then_answers_nothing_while_frozen(private_redis):
    with redis.Redis.from_url(private_redis.url, socket_timeout=5) as client:
        assert client.ping()
        private_redis.freeze()
        try:
            hasty = redis.Redis.from_url(private_redis.url, socket_timeout=0.3)
            with hasty, pytest.raises(redis.TimeoutError):
                hasty.ping()
        finally:
            private_redis.thaw()
        assert client.ping()


def test_a_private_redis_restarts_empty_on_its_port(private_redis):
    with redis.Redis.from_url(private_redis.url, socket_timeout=2) as client:
        client.set("key", "value")
        private_redis.stop()
        private_redis.start()
        client.connection_pool.disconnect()
        assert client.get("key") is None


def test_a_private_postgres_freezes_its_backends_with_its_postmaster(private_postgres):
    with socket.create_connection(("127.0.0.1", private_postgres.port), timeout=2):
        pass
    private_postgres.freeze()
    try:
        # A signal is delivered when the process next runs: wait for every one to show it. A backend
        # that ended meanwhile (ours, for the probe) stays a zombie while its postmaster is stopped.
        assert _eventually(lambda: {_state(pid) for pid in private_postgres.pids()} - {"Z"} == {"T"})
    finally:
        private_postgres.thaw()
    assert _eventually(lambda: "T" not in {_state(pid) for pid in private_postgres.pids()})


def test_a_closed_private_server_leaves_nothing_behind(private_postgres):
    folder = private_postgres.dir
    private_postgres.close()
    assert not os.path.exists(folder)


def _eventually(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _state(pid: int) -> str:
    # The field after the command name in /proc/<pid>/stat: R, S, D, T (stopped), ...
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]
