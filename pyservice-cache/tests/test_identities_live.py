"""Callers that a bare string could not tell apart never share a cached answer, over real HTTP (issue 20).

A service under ``pyservice serve`` (two workers) with the auth plugin (JWT
and API keys, anonymous calls allowed) and a per-caller cache on Redis; and
two Clients with different API keys sharing a client-side cache on Redis.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from pyservice import Client
from pyservice.testing import LiveServer
from pyservice_cache import cache_of

pytest.importorskip("pyservice_auth", reason="these tests authenticate with pyservice-auth")
jwt = pytest.importorskip("jwt", reason="PyJWT makes the test's tokens")

from .identity_service import API_KEYS, AUDIENCE, ISSUER, JWT_SECRET  # noqa: E402 - after the skips

HERE = Path(__file__).parent


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-cache-identity-{uuid.uuid4().hex}"
    yield prefix
    store = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = [*store.scan_iter(match=f"{prefix}*"), *store.scan_iter(match=f"lock:{prefix}*")]
        if keys:
            store.delete(*keys)
    finally:
        store.close()


@pytest.fixture
def server(live_server: Callable[..., LiveServer], redis_url: str, prefix: str) -> LiveServer:
    env = {"CACHE_REDIS_URL": redis_url, "CACHE_PREFIX": prefix}
    return live_server("identity_service:service", workers=2, cwd=HERE, env=env)


def _token(subject: str) -> str:
    now = int(time.time())
    claims = {"sub": subject, "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256", headers={"kid": "hs"})


def _whoami(server: LiveServer, authorization: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = requests.post(f"{server.url}/api/v1/whoami", data=b"{}", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return {"identity": answer.json()["identity"], "cache": answer.headers.get("X-Cache")}


def test_a_jwt_subject_named_like_an_address_and_the_anonymous_caller_from_it_never_share_an_answer(
    server: LiveServer,
) -> None:
    bearer = f"Bearer {_token('127.0.0.1')}"
    assert _whoami(server, bearer)["identity"] == "jwt:127.0.0.1"
    assert _whoami(server)["identity"] == "anonymous:127.0.0.1"
    # Each is cached on its own now, and each keeps getting its own answer.
    assert _whoami(server, bearer)["identity"] == "jwt:127.0.0.1"
    assert _whoami(server)["identity"] == "anonymous:127.0.0.1"


def test_the_anonymous_caller_first_then_the_jwt_subject_named_like_its_address(server: LiveServer) -> None:
    assert _whoami(server)["identity"] == "anonymous:127.0.0.1"
    assert _whoami(server, f"Bearer {_token('127.0.0.1')}")["identity"] == "jwt:127.0.0.1"


def test_an_api_key_principal_named_like_an_address_and_the_anonymous_caller_never_share_an_answer(
    server: LiveServer,
) -> None:
    key = f"ApiKey {API_KEYS['addr'][0]}"
    assert _whoami(server, key)["identity"] == "api_key:127.0.0.1"
    assert _whoami(server)["identity"] == "anonymous:127.0.0.1"
    assert _whoami(server, key)["identity"] == "api_key:127.0.0.1"


def test_a_jwt_subject_and_an_api_key_principal_of_the_same_name_never_share_an_answer(server: LiveServer) -> None:
    assert _whoami(server, f"Bearer {_token('127.0.0.1')}")["identity"] == "jwt:127.0.0.1"
    assert _whoami(server, f"ApiKey {API_KEYS['addr'][0]}")["identity"] == "api_key:127.0.0.1"


def _client(server: LiveServer, api_key: str, redis_url: str, prefix: str) -> Client:
    return Client(
        name="ident",
        operations={"plain": {"plugins": {"cache": {"scope": "caller", "ttl": 300}}}, "whoami": {}},
        endpoint={"port": server.port},
        plugins={
            "auth": {"mode": "api_key", "api_key": api_key},
            "cache": {"sides": ["client"], "backend": "redis", "redis_url": redis_url, "prefix": f"{prefix}-client"},
        },
    )


def test_two_clients_with_different_api_keys_sharing_a_client_cache_never_get_each_others_answer(
    server: LiveServer, redis_url: str, prefix: str
) -> None:
    # The service does not cache "plain": every answer a client did not cache itself comes from the service.
    with (
        _client(server, API_KEYS["alice"][0], redis_url, prefix) as alice,
        _client(server, API_KEYS["bob"][0], redis_url, prefix) as bob,
    ):
        assert alice.plain().identity == "api_key:alice"
        assert bob.plain().identity == "api_key:bob"
        assert alice.plain().identity == "api_key:alice"
        assert bob.plain().identity == "api_key:bob"
        # Both answers were cached, each under its own credential's identity.
        assert (cache_of(alice).stats.hits, cache_of(bob).stats.hits) == (1, 1)


def test_the_client_cache_holds_no_api_key_secret(server: LiveServer, redis_url: str, prefix: str) -> None:
    key = API_KEYS["alice"][0]
    with _client(server, key, redis_url, prefix) as alice:
        alice.plain()
    store = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        stored = [(name, store.get(name)) for name in store.scan_iter(match=f"{prefix}-client*")]
    finally:
        store.close()
    assert stored
    secret = key.partition(".")[2].encode()
    assert not any(secret in name or secret in (value or b"") for name, value in stored)
