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


def service_on(redis_url: str) -> pyservice.Service:
    plugins = {"cache": {"backend": "redis", "redis_url": redis_url}}
    return pyservice.Service(operations={"op": {"plugins": {"cache": {"scope": "public"}}}}, plugins=plugins)


def test_ready_when_redis_answers(redis_url):
    assert ready(service_on(redis_url)) == (200, {"status": "ready", "checks": {"cache": "ready"}})


def test_not_ready_when_redis_is_away_and_the_reason_keeps_the_password():
    status, body = ready(service_on(f"redis://:hunter2@127.0.0.1:{free_port()}/0"))
    assert status == 503
    assert body["checks"]["cache"].startswith("Redis does not answer")
    assert "hunter2" not in str(body)


def test_the_memory_backend_adds_no_check():
    service = pyservice.Service(operations={"op": {"plugins": {"cache": {"scope": "public"}}}}, plugins={"cache": {}})
    assert ready(service) == (200, {"status": "ready", "checks": {}})
