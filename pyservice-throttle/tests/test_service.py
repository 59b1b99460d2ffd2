from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from pyservice import ApiError, Plugin, Service
from pyservice.testing import client_for
from pyservice_throttle import Backend, MemoryBackend, RequestThrottled, Throttle
from throttle_helpers import FakeClock, add_handlers, make_api


def build(clock: FakeClock, throttle: dict[str, Any], **api: Any) -> Service:
    service = Service(available_plugins=[Throttle], **make_api({"clock": clock, **throttle}, **api))
    return add_handlers(service)


def call(service: Service, operation: str = "get_thing", *, remote_addr: str = "10.0.0.1", **fields: Any) -> Any:
    """One POST through the WSGI app; returns (status, headers, body)."""
    body = b"{}"
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/v1/{operation}",
        "REMOTE_ADDR": remote_addr,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.multiprocess": False,
        **fields,
    }
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=int(status.split()[0]), headers=dict(headers))

    chunks = service.wsgi_application(environ, start_response)
    return started["status"], started["headers"], b"".join(chunks)


def statuses(service: Service, count: int, **options: Any) -> list[int]:
    return [call(service, **options)[0] for _ in range(count)]


def test_burst_of_the_limit_passes_then_the_next_call_is_refused_with_429(clock: FakeClock) -> None:
    service = build(clock, {"limit": "5/second"})
    assert statuses(service, 6) == [200] * 5 + [429]


def test_a_refused_call_raises_request_throttled_on_the_client(clock: FakeClock) -> None:
    service = build(clock, {"limit": "1/minute"})
    # The client knows the exception by enabling the plugin (here without retrying).
    client = client_for(service, available_plugins=[Throttle], api=make_api({"retries": 0}))
    client.get_thing()
    with pytest.raises(RequestThrottled, match=r"rate limit of 1/60s exceeded; retry after 60 s"):
        client.get_thing()


def test_the_limit_refills_at_the_steady_rate_without_sleeping(clock: FakeClock) -> None:
    service = build(clock, {"limit": "10/2s"})
    assert statuses(service, 11).count(200) == 10
    clock.advance(0.2)  # one interval: one call
    assert statuses(service, 3) == [200, 429, 429]
    clock.advance(1.0)  # half the period: half the burst
    assert statuses(service, 6) == [200] * 5 + [429]


def test_no_double_burst_at_a_window_edge(clock: FakeClock) -> None:
    # A fixed window would let 10 through just before its edge and 10 more just after.
    service = build(clock, {"limit": "10/2s"})
    clock.advance(1.999)
    assert statuses(service, 10).count(200) == 10
    clock.advance(0.002)
    assert statuses(service, 10).count(200) == 0


def test_burst_lets_fewer_calls_go_back_to_back_than_the_count(clock: FakeClock) -> None:
    service = build(clock, {"limit": "100/second", "burst": 3})
    assert statuses(service, 4) == [200, 200, 200, 429]


@pytest.mark.parametrize(
    ("limit", "calls", "advance", "expected"),
    [
        ("1/minute", 1, 0.0, "60"),  # a whole period
        ("1/minute", 1, 59.5, "1"),  # half a second left: rounded up
        ("1/minute", 1, 58.999999, "2"),  # a microsecond over one second
        ("1/minute", 1, 59.0, "1"),  # exactly one second
        ("100/second", 100, 0.0, "1"),  # 10 ms left: never 0
        ("3/10s", 3, 0.0, "4"),  # 3.333334 s
    ],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    clock: FakeClock, limit: str, calls: int, advance: float, expected: str
) -> None:
    service = build(clock, {"limit": limit})
    statuses(service, calls)
    clock.advance(advance)
    status, headers, _ = call(service)
    assert status == 429
    assert headers["Retry-After"] == expected


def test_waiting_retry_after_is_enough_and_a_second_less_is_not(clock: FakeClock) -> None:
    service = build(clock, {"limit": "3/10s"})
    statuses(service, 3)
    _, headers, _ = call(service)
    wait = int(headers["Retry-After"])
    clock.advance(wait - 1)
    assert call(service)[0] == 429
    clock.advance(1)
    assert call(service)[0] == 200


def test_rate_limit_headers_are_on_success_refusal_and_handler_errors(clock: FakeClock) -> None:
    service = build(clock, {"limit": "2/second"})
    ok = call(service)
    error = call(service, **{"wsgi.input": io.BytesIO(b'{"missing": true}'), "CONTENT_LENGTH": "17"})
    refused = call(service)
    assert (ok[0], error[0], refused[0]) == (200, 400, 429)
    for _, headers, _ in (ok, error, refused):
        assert headers["RateLimit-Limit"] == "2"
        assert headers["RateLimit-Policy"] == "2;w=1;burst=2"
        assert {"RateLimit-Remaining", "RateLimit-Reset"} <= headers.keys()
    assert "Retry-After" not in ok[1]


def test_remaining_says_exactly_how_many_more_calls_pass(clock: FakeClock) -> None:
    service = build(clock, {"limit": "10/minute", "burst": 4})
    clock.advance(0)
    for expected_remaining in (3, 2, 1, 0):
        status, headers, _ = call(service)
        assert (status, headers["RateLimit-Remaining"]) == (200, str(expected_remaining))
    status, headers, _ = call(service)
    assert (status, headers["RateLimit-Remaining"]) == (429, "0")


def test_reset_is_when_the_whole_burst_is_back(clock: FakeClock) -> None:
    service = build(clock, {"limit": "10/minute", "burst": 4})
    for _ in range(3):
        _, headers, _ = call(service)
    assert headers["RateLimit-Reset"] == "18"  # three calls of 6 s each
    clock.advance(18)
    assert statuses(service, 5) == [200] * 4 + [429]


def test_callers_have_separate_budgets(clock: FakeClock) -> None:
    service = build(clock, {"limit": "1/minute"})
    assert call(service, remote_addr="10.0.0.1")[0] == 200
    assert call(service, remote_addr="10.0.0.2")[0] == 200
    assert call(service, remote_addr="10.0.0.1")[0] == 429


class SetsCaller(Plugin):
    """Stands for the auth plugin: sets the trusted caller identity."""

    name = "identify"

    def setup(self, owner: Any) -> None:
        @owner.plugin("request", name=self.name)
        def identify(context: Any) -> None:
            context.caller = context.headers.get("X-Test-Caller")
            context.process_request()


def test_the_trusted_caller_identity_is_the_key_not_the_address(clock: FakeClock) -> None:
    api = make_api({"clock": clock, "limit": "1/minute"})
    api["plugins"] = {"identify": {}, **api["plugins"]}
    service = add_handlers(Service(available_plugins=[Throttle, SetsCaller], **api))
    assert call(service, remote_addr="10.0.0.1", HTTP_X_TEST_CALLER="alice")[0] == 200
    assert call(service, remote_addr="10.0.0.2", HTTP_X_TEST_CALLER="alice")[0] == 429
    assert call(service, remote_addr="10.0.0.1", HTTP_X_TEST_CALLER="bob")[0] == 200


def test_forwarded_for_is_never_the_key(clock: FakeClock) -> None:
    service = build(clock, {"limit": "1/minute"})
    assert call(service, HTTP_X_FORWARDED_FOR="1.1.1.1")[0] == 200
    assert call(service, HTTP_X_FORWARDED_FOR="2.2.2.2")[0] == 429


@pytest.mark.parametrize("header", ["X-Forwarded-For", "forwarded", "X-Real-IP"])
def test_keying_on_a_forwarding_header_is_refused_at_start_up(clock: FakeClock, header: str) -> None:
    with pytest.raises(ApiError, match=r"plugins\.throttle\.key.*caller cannot forge"):
        build(clock, {"limit": "1/minute", "key": f"header:{header}"})


def test_auth_listed_after_throttle_is_placed_outside_it(clock: FakeClock) -> None:
    # Throttle declares after = ("auth",): the core sets auth up first wherever the api lists it.
    class Auth(SetsCaller):
        name = "auth"

    api = make_api({"clock": clock, "limit": "1/minute"})
    api["plugins"] = {**api["plugins"], "auth": {}}
    service = Service(available_plugins=[Throttle, Auth], **api)
    assert [placement.name for placement in service.placements] == ["auth", "throttle"]


def test_a_header_key_gives_each_value_its_budget_and_falls_back_to_the_caller(clock: FakeClock) -> None:
    service = build(clock, {"limit": "1/minute", "key": "header:X-Tenant"})
    assert call(service, HTTP_X_TENANT="a")[0] == 200
    assert call(service, HTTP_X_TENANT="b")[0] == 200
    assert call(service, HTTP_X_TENANT="a")[0] == 429
    assert call(service)[0] == 200  # no header: the caller's address
    assert call(service)[0] == 429


def test_a_field_key_reads_the_decoded_request(clock: FakeClock) -> None:
    service = build(clock, {"limit": "1/minute", "key": "field:account"})
    client = client_for(service, available_plugins=[Throttle], api=make_api({"retries": 0}))
    client.get_thing(account=1)
    client.get_thing(account=2)
    with pytest.raises(client.exceptions.RequestThrottled):
        client.get_thing(account=1)


def test_operations_share_the_service_budget_unless_they_set_their_own(clock: FakeClock) -> None:
    operations = {"get_thing": {}, "put_thing": {}, "slow_thing": {"plugins": {"throttle": {"limit": "1/minute"}}}}
    service = build(clock, {"limit": "2/minute"}, operations=operations)
    assert call(service, "get_thing")[0] == 200
    assert call(service, "put_thing")[0] == 200
    assert call(service, "get_thing")[0] == 429
    assert call(service, "slow_thing")[0] == 200
    assert call(service, "slow_thing")[0] == 429


def test_a_named_bucket_is_shared_by_the_operations_that_name_it(clock: FakeClock) -> None:
    both = {"plugins": {"throttle": {"limit": "1/minute", "bucket": "writes"}}}
    operations = {"get_thing": {}, "put_thing": both, "slow_thing": both}
    service = build(clock, {}, operations=operations)
    assert call(service, "put_thing")[0] == 200
    assert call(service, "slow_thing")[0] == 429
    assert (
        statuses(
            service,
            5,
        )
        == [200] * 5
    )  # get_thing: no limit at all


def test_an_operation_switched_off_is_not_throttled(clock: FakeClock) -> None:
    operations = {"get_thing": {"plugins": {"throttle": False}}, "put_thing": {}}
    service = build(clock, {"limit": "1/minute"}, operations=operations)
    assert statuses(service, 3) == [200, 200, 200]
    assert "throttle" not in service.describe_chain("get_thing")
    assert "plugin throttle" in service.describe_chain("put_thing")


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"limit": "100/fortnight"}, "limit", "expected a limit like '100/second'"),
        ({"limit": "0/second"}, "limit", "at least 1 call"),
        ({"limit": "1/second", "burst": 0}, "burst", "at least 1"),
        ({"limit": "1/second", "on_error": "maybe"}, "on_error", "expected 'open'"),
        ({"limit": "1/second", "key": "cookie:x"}, "key", "expected 'caller'"),
        ({"limit": "1/second", "backend": "redis"}, "redis_url", "is required with backend 'redis'"),
        ({"limit": "1/second", "backend": "nowhere:thing"}, "backend", "importable"),
        ({"limit": "1/second", "timeout": 0}, "timeout", "greater than 0"),
        ({"limit": "1/second", "clock": 3}, "clock", "expected a callable"),
    ],
)
def test_bad_config_fails_at_start_up_naming_the_key(config: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ApiError, match=rf"plugins\.throttle\.{key}.*{message}"):
        Service(available_plugins=[Throttle], **make_api(config))


def test_memory_backend_is_refused_at_start_up_under_several_workers(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYSERVICE_WORKERS", "2")
    with pytest.raises(ApiError, match=r"plugins\.throttle\.backend.*2 worker processes.*per_process: true"):
        build(clock, {"limit": "1/second"})


def test_per_process_accepts_the_memory_backend_under_several_workers(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYSERVICE_WORKERS", "2")
    service = build(clock, {"limit": "1/second", "per_process": True})
    assert call(service, **{"wsgi.multiprocess": True})[0] == 200


def test_memory_backend_refuses_calls_when_the_first_request_says_multiprocess(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    service = build(clock, {"limit": "1/second"})
    with caplog.at_level(logging.ERROR):
        status, _, body = call(service, **{"wsgi.multiprocess": True})
        assert status == 500
        assert call(service)[0] == 500  # the deployment stays refused
    assert b"InternalError" in body
    assert "wsgi.multiprocess" in caplog.text
    assert "per_process" in caplog.text


class CountingBackend(Backend):
    shared = True

    def __init__(self) -> None:
        self.inner = MemoryBackend()
        self.keys: list[str] = []

    def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        self.keys.append(key)
        return self.inner.take(key, now, interval, capacity)


def test_a_backend_of_ones_own_plugs_in_through_the_interface(clock: FakeClock) -> None:
    backend = CountingBackend()
    service = build(clock, {"limit": "2/second", "backend": backend})
    assert statuses(service, 3) == [200, 200, 429]
    assert backend.keys == ["things/*/c:anonymous:10.0.0.1"] * 3


def test_a_backend_that_is_not_shared_is_refused_under_several_workers(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Local(CountingBackend):
        shared = False

    monkeypatch.setenv("PYSERVICE_WORKERS", "4")
    with pytest.raises(ApiError, match=r"not shared and the service runs 4 worker processes"):
        build(clock, {"limit": "2/second", "backend": Local()})


class BrokenBackend(Backend):
    shared = True

    def __init__(self) -> None:
        self.calls = 0

    def take(self, key: str, now: int, interval: int, capacity: int) -> tuple[bool, int]:
        self.calls += 1
        raise ConnectionError("store went away")


def test_fail_open_lets_calls_through_and_warns_once_per_interval(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    backend = BrokenBackend()
    service = build(clock, {"limit": "1/minute", "backend": backend, "retry_interval": 0, "warn_interval": 3600})
    with caplog.at_level(logging.WARNING, logger="pyservice.throttle"):
        assert statuses(service, 5) == [200] * 5
    assert backend.calls == 5
    warnings = [r for r in caplog.records if r.name == "pyservice.throttle"]
    assert len(warnings) == 1
    assert "store went away" in warnings[0].getMessage()
    assert "failing open" in warnings[0].getMessage()


def test_fail_closed_answers_503_throttle_unavailable_without_a_traceback(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    service = build(clock, {"limit": "1/minute", "backend": BrokenBackend(), "on_error": "closed"})
    with caplog.at_level(logging.ERROR, logger="pyservice"):
        status, headers, body = call(service)
    assert status == 503
    assert b'"name":"ThrottleUnavailable"' in body
    assert b"store went away" not in body
    assert headers["Retry-After"] == "1"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_on_error_may_differ_per_operation(clock: FakeClock) -> None:
    operations = {"get_thing": {}, "put_thing": {"plugins": {"throttle": {"on_error": "closed"}}}}
    service = build(clock, {"limit": "1/minute", "backend": BrokenBackend()}, operations=operations)
    assert call(service, "get_thing")[0] == 200
    assert call(service, "put_thing")[0] == 503


def test_after_a_failure_the_backend_is_skipped_for_retry_interval(clock: FakeClock) -> None:
    backend = BrokenBackend()
    service = build(clock, {"limit": "1/minute", "backend": backend, "retry_interval": 3600})
    assert statuses(service, 4) == [200] * 4
    assert backend.calls == 1


def test_memory_backend_at_max_keys_forgets_the_buckets_that_are_full_again() -> None:
    backend = MemoryBackend(max_keys=4)
    for number in range(4):
        backend.take(f"old{number}", 0, 10, 100)  # full again at 10 µs
    backend.take("new", 20, 10, 100)
    assert len(backend) == 1


def test_memory_backend_at_max_keys_of_active_callers_forgets_the_oldest_quarter() -> None:
    backend = MemoryBackend(max_keys=8)
    for number in range(8):
        backend.take(f"old{number}", 0, 10, 100)
    backend.take("new", 5, 10, 100)
    assert len(backend) == 7  # room for a quarter more before the next sweep
    assert backend.take("old1", 5, 10, 100) == (True, 15)  # forgotten: a full bucket again
    assert backend.take("old2", 5, 10, 100) == (True, 20)  # still tracked
