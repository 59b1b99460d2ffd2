"""Request ids across two services over real HTTP, and gunicorn's logs through our renderer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyservice
import requests

HERE = Path(__file__).parent


def _events(server, expected_calls: int) -> list[dict]:
    # The server writes its lines after answering; wait for them, boundedly.
    for _ in range(100):
        events = [json.loads(line) for line in server.output().splitlines() if line.strip()]
        if sum(1 for event in events if event.get("event") == "call") >= expected_calls:
            return events
        time.sleep(0.05)
    return [json.loads(line) for line in server.output().splitlines() if line.strip()]


def _lines(server) -> list[str]:
    return [line for line in server.output().splitlines() if line.strip()]


def test_request_id_follows_a_request_across_two_services(live_server):
    back = live_server("live_back:service", workers=2, cwd=HERE)
    front = live_server("live_front:service", workers=2, cwd=HERE, env={"BACK_PORT": str(back.port)})
    answer = requests.post(
        f"{front.url}/api/v1/fetch", json={"key": "k1"}, headers={"X-Request-ID": "across-1"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.json() == {"value": "value of k1"}
    assert answer.headers["X-Request-ID"] == "across-1"
    front_events = _events(front, 2)
    back_events = _events(back, 1)
    [front_call] = [e for e in front_events if e.get("event") == "call" and e["side"] == "service"]
    [outgoing] = [e for e in front_events if e.get("event") == "call" and e["side"] == "client"]
    [back_call] = [e for e in back_events if e.get("event") == "call"]
    [back_own] = [e for e in back_events if e.get("event") == "back handler"]
    assert {front_call["request_id"], outgoing["request_id"], back_call["request_id"], back_own["request_id"]} == {
        "across-1"
    }
    assert front_call["trace_id"] == outgoing["trace_id"] == back_call["trace_id"]
    assert back_call["parent_id"] == outgoing["span_id"]
    assert outgoing["parent_id"] == front_call["span_id"]


def test_a_client_made_request_id_reaches_both_services(live_server):
    back = live_server("live_back:service", workers=1, cwd=HERE)
    front = live_server("live_front:service", workers=1, cwd=HERE, env={"BACK_PORT": str(back.port)})
    api = {
        "name": "front",
        "operations": ["fetch"],
        "endpoint": {"port": front.port},
        "plugins": {"logging": {"output": "stdout", "logger_name": "test.live.client"}},
    }
    with pyservice.Client(**api) as caller:
        assert caller.fetch(key="k2").value == "value of k2"
    [front_call] = [e for e in _events(front, 2) if e.get("event") == "call" and e["side"] == "service"]
    [back_call] = [e for e in _events(back, 1) if e.get("event") == "call"]
    assert len(front_call["request_id"]) == 32
    assert front_call["request_id"] == back_call["request_id"]


def test_server_logs_go_through_the_same_renderer_exactly_once(live_server):
    # gunicorn's own loggers are the ones configure_stdlib redirects: served by gunicorn, not the default server.
    back = live_server("live_back:service", workers=2, cwd=HERE, server="gunicorn")
    requests.post(f"{back.url}/api/v1/lookup", json={"key": "k"}, timeout=10)

    def booted() -> list[dict]:
        # Every line must be one JSON object: gunicorn's own lines are rendered by us.
        events = [json.loads(line) for line in _lines(back)]
        return [e for e in events if e.get("logger") == "gunicorn.error" and "Booting worker" in e["event"]]

    for _ in range(100):  # workers boot concurrently with the first request
        if len(booted()) >= 2:
            break
        time.sleep(0.05)
    assert len(booted()) == 2
    assert sum(1 for line in _lines(back) if "Listening at" in line) == 1


def test_the_default_servers_own_lines_are_rendered_as_events(live_server):
    back = live_server("live_back:service", workers=2, cwd=HERE)
    requests.post(f"{back.url}/api/v1/lookup", json={"key": "k"}, timeout=10)

    def server_events() -> list[dict]:
        # Every line must be one JSON object: the server's banner and worker lines included.
        events = [json.loads(line) for line in _lines(back)]
        return [e for e in events if e.get("logger") == "pyservice.server"]

    for _ in range(100):  # workers start concurrently with the first request
        if sum("started" in e["event"] for e in server_events()) >= 2:
            break
        time.sleep(0.05)
    events = server_events()
    assert sum(e["event"].startswith("worker ") and e["event"].endswith(" started") for e in events) == 2
    assert sum("serving" in e["event"] for e in events) == 1


# -- redaction over real HTTP -------------------------------------------------------

CARD_NUMBER = 4111111111111111


def _nested(depth: int) -> bytes:
    return b'{"nested":' + b"[" * depth + b"1" + b"]" * depth + b"}"


def test_bodies_nested_500_700_and_1000_deep_are_answered_and_logged_truncated(live_server):
    server = live_server("live_redaction:service", workers=1, cwd=HERE)
    for number, depth in enumerate((500, 700, 1000), start=1):
        answer = requests.post(
            f"{server.url}/api/v1/store",
            data=_nested(depth),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert (answer.status_code, answer.json()) == (200, {"depth": depth})
        calls = [e for e in _events(server, number) if e.get("event") == "call"]
        assert len(calls) == number
        assert calls[-1]["outcome"] == "ok"
        assert "[TRUNCATED: nested deeper than 64 levels]" in calls[-1]["request"]
    # Nothing failed on the way: no error event, no traceback.
    assert [e for e in _events(server, 3) if e.get("level") == "error"] == []
    assert "Traceback" not in server.output()


def test_card_numbers_as_keys_integers_and_floats_never_reach_the_log(live_server):
    server = live_server("live_redaction:service", workers=1, cwd=HERE)
    body = json.dumps({"card": str(CARD_NUMBER), "number": CARD_NUMBER, "real": float(CARD_NUMBER)})
    answer = requests.post(
        f"{server.url}/api/v1/note", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert answer.status_code == 200
    events = _events(server, 1)
    noted = next(e for e in events if e.get("event") == "noted")
    assert noted["cards"] == {"[REDACTED]": "key"}
    assert (noted["number"], noted["real"]) == ("[REDACTED]", "[REDACTED]")
    nested = next(e for e in events if e.get("event") == "nested")
    assert nested["payload"] == {"by_card": {"[REDACTED]": 1}, "numbers": ["[REDACTED]", "[REDACTED]"]}
    assert "4111" not in server.output()
