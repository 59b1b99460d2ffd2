"""The readiness endpoint asks the plugin's backend, and says why it is not ready without secrets."""

from __future__ import annotations

from typing import Any

import pyservice
import requests
from pyservice.testing import WSGITransport, free_port


def ready(service: pyservice.Service) -> tuple[int, dict[str, Any]]:
    session = requests.Session()
    session.mount("http://", WSGITransport(service))
    answer = session.get("http://service/health/ready", timeout=10)
    return answer.status_code, answer.json()


def test_ready_when_the_database_answers(tmp_path):
    service = pyservice.Service(operations=["op"], plugins={"sqlalchemy": {"url": f"sqlite:///{tmp_path}/ready.db"}})
    assert ready(service) == (200, {"status": "ready", "checks": {"sqlalchemy": "ready"}})
    service.plugins[0].dispose()


def test_not_ready_when_the_database_is_away_and_the_reason_keeps_the_password():
    url = f"postgresql+psycopg://app:hunter2@127.0.0.1:{free_port()}/app"
    service = pyservice.Service(
        operations=["op"],
        plugins={"sqlalchemy": {"url": url, "pool_timeout": 1, "connect_args": {"connect_timeout": 1}}},
    )
    status, body = ready(service)
    assert status == 503
    assert body["checks"]["sqlalchemy"].startswith("the database does not answer")
    assert "hunter2" not in str(body)
    service.plugins[0].dispose()
