"""A principal and the anonymous caller a bare string could not tell apart have budgets of their own (issue 20).

Over real HTTP: ``pyservice serve`` with two workers, the auth plugin (JWT,
anonymous calls allowed) and a 5/hour throttle on Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from pyservice.testing import LiveServer

pytest.importorskip("pyservice_auth", reason="these tests authenticate with pyservice-auth")
jwt = pytest.importorskip("jwt", reason="PyJWT makes the test's tokens")

from .identity_service import AUDIENCE, ISSUER, JWT_SECRET  # noqa: E402 - after the skips

HERE = Path(__file__).parent


@pytest.fixture
def server(live_server: Callable[..., LiveServer], redis_url: str, prefix: str) -> LiveServer:
    env = {"THROTTLE_REDIS_URL": redis_url, "THROTTLE_PREFIX": prefix}
    return live_server("identity_service:service", workers=2, cwd=HERE, env=env)


def _bearer(subject: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": subject, "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256', headers={'kid': 'hs'})}"}


def _statuses(server: LiveServer, headers: dict[str, str], count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        # A connection each, so the calls spread over both workers.
        with requests.Session() as session:
            answer = session.post(f"{server.url}/api/v1/ping", json={}, headers=headers, timeout=10)
        statuses.append(answer.status_code)
    return statuses


def test_a_jwt_subject_named_like_an_address_does_not_spend_the_anonymous_callers_budget(server: LiveServer) -> None:
    assert _statuses(server, _bearer("127.0.0.1"), 6) == [200] * 5 + [429]
    assert _statuses(server, {}, 6) == [200] * 5 + [429]


def test_the_anonymous_caller_does_not_spend_the_budget_of_a_subject_named_like_its_address(
    server: LiveServer,
) -> None:
    assert _statuses(server, {}, 6) == [200] * 5 + [429]
    assert _statuses(server, _bearer("127.0.0.1"), 1) == [200]
