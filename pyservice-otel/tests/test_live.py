"""Over real HTTP, with pyservice serve: one trace across two services, and a Prometheus scrape."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyservice
import pytest
import requests
from pyservice.testing import LiveServer

HERE = Path(__file__).parent


@pytest.fixture
def spans_file(tmp_path):
    return tmp_path / "spans.jsonl"


def read_spans(path: Path, count: int) -> list[dict]:
    # The workers export in batches every 50 ms; wait for them, bounded.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"expected {count} spans, got {path.read_text() if path.exists() else 'none'}")


def test_a_call_across_two_services_is_one_trace_with_correct_parents(spans_file, otel):
    env = {"OTEL_TEST_SPANS": str(spans_file), "OTEL_BSP_SCHEDULE_DELAY": "50", "PYTHONPATH": str(HERE)}
    back = LiveServer("live_back:back", workers=2, cwd=HERE, env=env)
    with back, LiveServer("live_front:front", workers=2, cwd=HERE, env={**env, "BACK_PORT": str(back.port)}) as front:
        api = {"name": "front", "operations": ["get"], "endpoint": {"host": "127.0.0.1", "port": front.port}}
        client = pyservice.Client(**api, plugins={"otel": otel.config()})
        assert client.get(key="abc").value == "ABC"
        remote = read_spans(spans_file, 4)
    local = otel.spans()
    call = next(span for span in local if span.parent is None)
    attempt = next(span for span in local if span.parent is not None)
    trace_id = f"{call.context.trace_id:032x}"
    front_server = next(span for span in remote if span["name"] == "front/get")
    back_call = next(
        span
        for span in remote
        if span["name"] == "back/lookup" and span["kind"] == "CLIENT" and span["parent_id"] == front_server["span_id"]
    )
    back_attempt = next(
        span for span in remote if span["kind"] == "CLIENT" and span["parent_id"] == back_call["span_id"]
    )
    back_server = next(span for span in remote if span["name"] == "back/lookup" and span["kind"] == "SERVER")
    assert {span["trace_id"] for span in remote} == {trace_id}
    assert front_server["parent_id"] == f"{attempt.context.span_id:016x}"
    assert back_server["parent_id"] == back_attempt["span_id"]
    assert front_server["service_name"] == "front"
    assert back_server["service_name"] == "back"
    assert len(remote) == 4


def test_the_metrics_path_serves_prometheus_text_of_the_worker(tmp_path):
    env = {"OTEL_TEST_SPANS": str(tmp_path / "spans.jsonl"), "PYTHONPATH": str(HERE)}
    back = LiveServer("live_back:back", workers=1, cwd=HERE, env=env)
    with back, LiveServer("live_front:front", workers=1, cwd=HERE, env={**env, "BACK_PORT": str(back.port)}) as front:
        api = {"name": "front", "operations": ["get"], "endpoint": {"host": "127.0.0.1", "port": front.port}}
        client = pyservice.Client(**api)
        for key in ("a", "b", "c"):
            client.get(key=key)
        answer = requests.get(front.url + "/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = answer.text
    assert "# TYPE rpc_server_call_duration_seconds histogram" in text
    labels = (
        'rpc_method="front/get",rpc_response_status_code="200",rpc_service="front",'
        'rpc_system="pyservice",rpc_system_name="pyservice"'
    )
    assert f"rpc_server_call_duration_seconds_count{{{labels}}} 3" in text
    assert f'rpc_server_call_duration_seconds_bucket{{{labels},le="+Inf"}} 3' in text
    assert "# TYPE rpc_client_call_duration_seconds histogram" in text  # the front's own calls to the back
    assert "# TYPE rpc_server_active_requests gauge" in text
