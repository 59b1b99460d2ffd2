"""Health endpoints: liveness and readiness, answered without any operation's chain."""

from __future__ import annotations

import threading
import time

import pyservice
import pytest


def service_with_hooks(**api):
    service = pyservice.Service(operations=["op"], **api)
    calls = []

    @service.plugin(scope="request")
    def hook(context):
        calls.append(context.operation)
        context.process_request()

    service.operation("op")(lambda request, response, context: None)
    return service, calls


def get(wsgi, app, path, method="GET"):
    return wsgi(app, path, b"", method=method, content_type=None, content_length=None)


def test_liveness_answers_without_running_the_chain(wsgi):
    service, calls = service_with_hooks()
    answer = get(wsgi, service, "/health/live")
    assert (answer.status, answer.json()) == (200, {"status": "live"})
    assert calls == []


def test_readiness_without_checks_is_ready(wsgi):
    service, _calls = service_with_hooks()
    answer = get(wsgi, service, "/health/ready")
    assert (answer.status, answer.json()) == (200, {"status": "ready", "checks": {}})


def test_readiness_runs_every_check_and_names_the_failing_ones(wsgi):
    service, calls = service_with_hooks()
    service.add_readiness_check("database", lambda: None)
    service.add_readiness_check("redis", lambda: "connection refused")
    answer = get(wsgi, service, "/health/ready")
    assert answer.status == 503
    assert answer.json() == {"status": "not ready", "checks": {"database": "ready", "redis": "connection refused"}}
    assert calls == []


def test_a_check_that_raises_is_not_ready_without_its_message_outside_debug(wsgi, caplog):
    service, _calls = service_with_hooks()

    def database():
        raise ConnectionError("postgresql://app:hunter2@db refused")

    service.add_readiness_check("database", database)
    answer = get(wsgi, service, "/health/ready")
    assert answer.status == 503
    assert answer.json()["checks"] == {"database": "raised ConnectionError"}
    assert b"hunter2" not in answer.body
    assert "readiness check 'database' failed" in caplog.text


def test_in_debug_mode_the_reason_carries_the_exceptions_message(wsgi):
    service, _calls = service_with_hooks(debug=True)
    service.add_readiness_check("database", lambda: 1 / 0)
    assert get(wsgi, service, "/health/ready").json()["checks"] == {
        "database": "raised ZeroDivisionError: division by zero"
    }


def test_a_hung_check_cannot_hang_the_probe(wsgi):
    service, _calls = service_with_hooks(health={"timeout": 0.1})
    release = threading.Event()
    started = []

    def hung():
        started.append(1)
        release.wait(5)

    service.add_readiness_check("backend", hung)
    service.add_readiness_check("fine", lambda: None)
    try:
        began = time.monotonic()
        first = get(wsgi, service, "/health/ready")
        second = get(wsgi, service, "/health/ready")
        assert time.monotonic() - began < 4.0  # far below the 5 s the hung check would take
        assert first.status == second.status == 503
        assert first.json()["checks"] == {"backend": "no answer within 0.1s", "fine": "ready"}
        assert started == [1]  # the second probe waited for the same run rather than start another
    finally:
        release.set()


def test_head_answers_the_status_without_a_body(wsgi):
    service, _calls = service_with_hooks()
    answer = get(wsgi, service, "/health/live", method="HEAD")
    assert (answer.status, answer.body) == (200, b"")
    assert answer.headers["Content-Length"] == str(len(b'{"status":"live"}'))


def test_other_methods_are_405_with_allow(wsgi):
    service, _calls = service_with_hooks()
    answer = wsgi(service, "/health/ready", b"{}")
    assert (answer.status, answer.headers["Allow"]) == (405, "GET, HEAD")
    assert answer.error["name"] == "MethodNotAllowed"


def test_the_paths_are_configurable_and_null_switches_them_off(wsgi):
    service, _calls = service_with_hooks(health={"live": "/livez", "ready": None})
    assert get(wsgi, service, "/livez").status == 200
    assert get(wsgi, service, "/health/live").status == 404
    assert get(wsgi, service, "/health/ready").status == 404
    off, _calls = service_with_hooks(health=None)
    assert get(wsgi, off, "/health/live").status == 404


def test_a_plugin_contributes_a_readiness_check(wsgi):
    class Backend(pyservice.Plugin):
        name = "backend"

        def setup(self, owner):
            if owner.side == "service":
                owner.add_readiness_check(self.name, lambda: "warming up")

    service = pyservice.Service(operations=["op"], plugins={"backend": {}}, available_plugins=[Backend])
    assert get(wsgi, service, "/health/ready").json()["checks"] == {"backend": "warming up"}


def test_a_check_name_is_unique():
    service, _calls = service_with_hooks()
    service.add_readiness_check("db", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        service.add_readiness_check("db", lambda: None)


@pytest.mark.parametrize(
    ("health", "key"),
    [
        ({"live": "health"}, "health.live"),
        ({"ready": "/api/v1/op"}, "health.ready"),
        ({"timeout": 0}, "health.timeout"),
        ({"liveness": "/l"}, "health.liveness"),
    ],
)
def test_a_wrong_health_config_fails_naming_the_key(health, key):
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations=["op"], health=health)
    assert raised.value.key == key
