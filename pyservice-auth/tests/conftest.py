from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# The helpers and the services LiveServer starts live next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from auth_helpers import PrivateRedis


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker count inherited from the environment would refuse the memory nonce store.
    monkeypatch.delenv("PYSERVICE_WORKERS", raising=False)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"test-auth:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def private_redis(redis_url: str) -> Iterator[PrivateRedis]:
    # Asking for redis_url first: where no Redis runs, this skips (or fails in CI) alike.
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed, so the private Redis cannot be started")
    server = PrivateRedis()
    yield server
    server.close()
