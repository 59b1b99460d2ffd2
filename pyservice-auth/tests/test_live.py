"""Several gunicorn worker processes over real HTTP: a replay refused whichever worker gets it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from auth_helpers import signed
from pyservice import Client
from pyservice_auth import Auth

HERE = Path(__file__).parent
SECRET = "live-secret-0123456789abcdef0123456789abcdef"
MAX_SENDS = 200


def test_a_replay_sent_to_another_worker_is_refused_with_the_redis_nonce_store(
    live_server: Any, redis_url: str, redis_prefix: str
) -> None:
    env = {"AUTH_REDIS_URL": redis_url, "AUTH_REDIS_PREFIX": redis_prefix}
    server = live_server("live_service:service", workers=2, cwd=HERE, env=env)
    body = b'{"n":1}'
    headers = signed(body, path="/api/v1/ping", secret=SECRET, key_id="live")
    answers: list[tuple[int, str]] = []
    # A new connection for each send, so the kernel spreads them over both workers.
    for _ in range(MAX_SENDS):
        with requests.Session() as session:
            answer = session.post(f"{server.url}/api/v1/ping", data=body, headers=headers, timeout=10)
        answers.append((answer.status_code, answer.headers["X-Worker"]))
        if len({worker for _, worker in answers}) == 2 and len(answers) >= 10:
            break
    workers = {worker for _, worker in answers}
    assert len(workers) == 2, f"only one worker answered {len(answers)} sends"
    assert [status for status, _ in answers] == [200] + [401] * (len(answers) - 1)
    first_worker = answers[0][1]
    assert any(worker != first_worker and status == 401 for status, worker in answers)


def test_the_client_plugin_signs_calls_to_a_multi_worker_server(
    live_server: Any, redis_url: str, redis_prefix: str
) -> None:
    env = {"AUTH_REDIS_URL": redis_url, "AUTH_REDIS_PREFIX": redis_prefix}
    server = live_server("live_service:service", workers=2, cwd=HERE, env=env)
    client = Client(
        available_plugins=[Auth],
        name="live",
        operations=["ping"],
        endpoint={"port": server.port},
        plugins={"auth": {"mode": "signed", "key_id": "live", "secret": SECRET}},
    )
    with client:
        assert [client.ping().caller for _ in range(5)] == ["live"] * 5


def test_a_multi_worker_server_with_the_memory_nonce_store_refuses_to_start(live_server: Any) -> None:
    with pytest.raises(RuntimeError, match=r"nonce_store.*worker processes"):
        live_server("live_service:service", workers=2, cwd=HERE, start_timeout=20)
