from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import requests
from conftest import FakeClock, api
from pyservice import ApiError, Client, Plugin, Service
from pyservice.testing import client_for
from pyservice_idempotency import (
    REPLAYED_HEADER,
    Backend,
    BackendUnavailable,
    Idempotency,
    MemoryBackend,
    idempotency_of,
)


class Orders:
    """A service whose handlers count their runs."""

    def __init__(self, description: dict[str, Any], available_plugins: Any = ()) -> None:
        self.runs = 0
        self.available = available_plugins
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        service = self.service = Service(**description, available_plugins=available_plugins)
        self.orders: dict[int, Any] = {}

        @service.operation("create_order")
        def create_order(request: Any, response: Any, context: Any) -> None:
            self.runs += 1
            self.entered.set()
            if self.gate is not None:
                self.gate.wait(10)
            if request.fail == "out_of_stock":
                raise service.exceptions.OutOfStock("no more", request.item)
            if request.fail == "busy":
                raise service.exceptions.Busy("try later")
            if request.fail == "boom":
                raise RuntimeError("a bug")
            order_id = len(self.orders) + 1
            self.orders[order_id] = request.item
            response.id = order_id
            response.key = context.idempotency_key
            if request.big:
                response.padding = "x" * request.big
            context.response_headers.append(("Order-Location", f"/orders/{order_id}"))

        @service.operation("get_order")
        def get_order(request: Any, response: Any, context: Any) -> None:
            self.runs += 1
            response.item = self.orders.get(request.id)

        @service.operation("cancel_order")
        def cancel_order(request: Any, response: Any, context: Any) -> None:
            self.runs += 1

    def post(self, operation: str, body: bytes | str, key: str | None = None, **headers: str) -> requests.Response:
        """A raw call over the in-process transport: the exact headers and body."""
        client = client_for(self.service, available_plugins=self.available)
        sent = {"Content-Type": "application/json", **headers}
        if key is not None:
            sent["Idempotency-Key"] = key
        return client.session.post(f"http://127.0.0.1:8080/api/v1/{operation}", data=body, headers=sent)


def test_a_duplicate_gets_the_first_answer_replayed_and_the_handler_runs_once() -> None:
    orders = Orders(api())
    first = orders.post("create_order", '{"item": "bolt"}', key="k-1")
    second = orders.post("create_order", '{"item": "bolt"}', key="k-1")
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert orders.runs == 1
    assert REPLAYED_HEADER not in first.headers
    assert second.headers[REPLAYED_HEADER] == "true"


def test_a_replay_carries_the_headers_the_call_added() -> None:
    orders = Orders(api())
    orders.post("create_order", '{"item": "bolt"}', key="k-1")
    second = orders.post("create_order", '{"item": "bolt"}', key="k-1")
    assert second.headers["Order-Location"] == "/orders/1"


def test_field_order_and_spacing_do_not_make_a_different_request() -> None:
    orders = Orders(api())
    orders.post("create_order", '{"item": "bolt", "count": 2}', key="k-1")
    second = orders.post("create_order", '{ "count":2,"item":"bolt" }', key="k-1")
    assert second.status_code == 200
    assert orders.runs == 1


def test_the_same_key_with_a_different_body_is_answered_422() -> None:
    orders = Orders(api())
    orders.post("create_order", '{"item": "bolt"}', key="k-1")
    second = orders.post("create_order", '{"item": "nut"}', key="k-1")
    assert second.status_code == 422
    assert second.json()["error"]["kind"] == "exception"
    assert second.json()["error"]["name"] == "IdempotencyKeyReused"
    assert orders.runs == 1


def test_the_same_key_on_another_operation_is_another_key() -> None:
    orders = Orders(api())
    orders.post("create_order", "{}", key="k-1")
    assert orders.post("cancel_order", "{}", key="k-1").status_code == 200
    assert orders.runs == 2


def test_the_same_key_from_another_caller_is_another_key() -> None:
    orders = Orders(api())
    one = client_for(orders.service, remote_addr="10.0.0.1")
    other = client_for(orders.service, remote_addr="10.0.0.2")
    one.call("create_order", {"item": "bolt"}, idempotency_key="k-1")
    other.call("create_order", {"item": "bolt"}, idempotency_key="k-1")
    assert orders.runs == 2


def test_a_duplicate_while_the_first_runs_is_answered_409_with_retry_after() -> None:
    orders = Orders(api({"retry_after": 2}))
    orders.gate = threading.Event()
    first: list[requests.Response] = []
    thread = threading.Thread(target=lambda: first.append(orders.post("create_order", "{}", key="k-1")))
    thread.start()
    try:
        assert orders.entered.wait(5)
        second = orders.post("create_order", "{}", key="k-1")
    finally:
        orders.gate.set()
        thread.join(10)
    assert second.status_code == 409
    assert second.headers["Retry-After"] == "2"
    assert second.json()["error"]["name"] == "IdempotencyKeyInUse"
    assert first[0].status_code == 200
    assert orders.runs == 1


def test_a_whitelisted_exception_is_replayed_like_an_answer() -> None:
    orders = Orders(api())
    first = orders.post("create_order", '{"fail": "out_of_stock", "item": "bolt"}', key="k-1")
    second = orders.post("create_order", '{"fail": "out_of_stock", "item": "bolt"}', key="k-1")
    assert first.status_code == second.status_code == 409
    assert second.content == first.content
    assert second.headers[REPLAYED_HEADER] == "true"
    assert orders.runs == 1


def test_a_client_raises_a_replayed_exception_by_name() -> None:
    orders = Orders(api())
    client = client_for(orders.service)
    for _ in range(2):
        with pytest.raises(client.exceptions.OutOfStock) as caught:
            client.call("create_order", {"fail": "out_of_stock", "item": "bolt"}, idempotency_key="k-1")
        assert caught.value.args == ("no more", "bolt")
    assert orders.runs == 1


def test_an_internal_error_is_not_stored_and_the_retry_runs() -> None:
    orders = Orders(api())
    first = orders.post("create_order", '{"fail": "boom"}', key="k-1")
    second = orders.post("create_order", '{"fail": "boom"}', key="k-1")
    assert first.status_code == second.status_code == 500
    assert REPLAYED_HEADER not in second.headers
    assert orders.runs == 2


def test_a_5xx_exception_releases_the_key() -> None:
    orders = Orders(api())
    orders.post("create_order", '{"fail": "busy"}', key="k-1")
    orders.post("create_order", '{"fail": "busy"}', key="k-1")
    assert orders.runs == 2


def test_an_exception_named_transient_releases_the_key() -> None:
    orders = Orders(api(create_order={"transient": ["OutOfStock"]}))
    orders.post("create_order", '{"fail": "out_of_stock"}', key="k-1")
    orders.post("create_order", '{"fail": "out_of_stock"}', key="k-1")
    assert orders.runs == 2


def test_a_malformed_body_is_refused_by_the_core_and_claims_nothing() -> None:
    orders = Orders(api())
    assert orders.post("create_order", "[1]", key="k-1").status_code == 400
    assert orders.post("create_order", "{}", key="k-1").status_code == 200
    assert orders.runs == 1


def test_a_call_without_a_key_runs_unprotected_unless_required() -> None:
    orders = Orders(api())
    orders.post("create_order", "{}")
    orders.post("create_order", "{}")
    assert orders.runs == 2


def test_a_missing_key_where_required_is_answered_400() -> None:
    orders = Orders(api(create_order={"required": True}))
    answer = orders.post("create_order", "{}")
    assert answer.status_code == 400
    assert answer.json()["error"]["name"] == "IdempotencyKeyRequired"
    assert "Idempotency-Key" in answer.json()["error"]["message"]
    assert orders.runs == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", '"unterminated'])
def test_an_invalid_key_is_answered_400(key: str) -> None:
    orders = Orders(api())
    answer = orders.post("create_order", "{}", key=key.encode("utf-8").decode("latin-1"))
    assert answer.status_code == 400
    assert answer.json()["error"]["name"] == "IdempotencyKeyInvalid"
    assert orders.runs == 0


def test_a_quoted_key_and_the_bare_key_are_the_same_key() -> None:
    orders = Orders(api())
    orders.post("create_order", "{}", key='"k-1"')
    assert orders.post("create_order", "{}", key="k-1").headers[REPLAYED_HEADER] == "true"
    assert orders.runs == 1


def test_a_key_expires_after_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    orders = Orders(api({"backend": backend, "ttl": 60}))
    orders.post("create_order", "{}", key="k-1")
    clock.advance(59)
    assert orders.post("create_order", "{}", key="k-1").headers.get(REPLAYED_HEADER) == "true"
    clock.advance(2)
    assert REPLAYED_HEADER not in orders.post("create_order", "{}", key="k-1").headers
    assert orders.runs == 2


def test_an_answer_over_max_answer_size_is_not_replayed_and_not_run_again(caplog: pytest.LogCaptureFixture) -> None:
    orders = Orders(api({"max_answer_size": 1000}))
    with caplog.at_level(logging.WARNING, "pyservice.idempotency"):
        first = orders.post("create_order", '{"big": 2000}', key="k-1")
    second = orders.post("create_order", '{"big": 2000}', key="k-1")
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["error"]["name"] == "IdempotencyAnswerNotKept"
    assert "max_answer_size" in caplog.text
    assert orders.runs == 1


def test_an_idempotent_operation_is_not_protected_unless_its_entry_asks() -> None:
    orders = Orders(api())
    orders.post("get_order", '{"id": 1}', key="k-1")
    orders.post("get_order", '{"id": 1}', key="k-1")
    assert orders.runs == 2
    asked = Orders(api(get_order={}))
    asked.post("get_order", '{"id": 1}', key="k-1")
    asked.post("get_order", '{"id": 1}', key="k-1")
    assert asked.runs == 1


def test_an_operation_switched_off_is_not_protected() -> None:
    orders = Orders(api(create_order=False))
    orders.post("create_order", "{}", key="k-1")
    orders.post("create_order", "{}", key="k-1")
    assert orders.runs == 2


def test_the_handler_sees_the_key() -> None:
    orders = Orders(api())
    assert orders.post("create_order", "{}", key="k-1").json()["key"] == "k-1"


class Down(Backend):
    """A store that always fails."""

    shared = True

    def __init__(self) -> None:
        self.asked = 0

    def claim(self, key: str, record: bytes, ttl: float, deadline: float) -> bytes | None:
        self.asked += 1
        raise BackendUnavailable("down")

    def complete(self, key: str, claim: bytes, record: bytes, ttl: float, deadline: float) -> bool:
        raise BackendUnavailable("down")

    def release(self, key: str, claim: bytes, deadline: float) -> None:
        raise BackendUnavailable("down")


def test_a_store_that_fails_is_answered_503_and_the_call_does_not_run(caplog: pytest.LogCaptureFixture) -> None:
    orders = Orders(api({"backend": Down()}))
    with caplog.at_level(logging.WARNING, "pyservice.idempotency"):
        answer = orders.post("create_order", "{}", key="k-1")
    assert answer.status_code == 503
    assert answer.json()["error"]["name"] == "IdempotencyUnavailable"
    assert answer.headers["Retry-After"] == "1"
    assert "idempotency store unavailable" in caplog.text
    assert orders.runs == 0


def test_a_store_that_failed_is_left_alone_for_retry_interval() -> None:
    backend = Down()
    orders = Orders(api({"backend": backend, "retry_interval": 60}))
    for _ in range(3):
        assert orders.post("create_order", "{}", key="k-1").status_code == 503
    assert backend.asked == 1


def test_on_error_open_runs_the_call_without_a_key() -> None:
    orders = Orders(api({"backend": Down(), "on_error": "open"}))
    assert orders.post("create_order", "{}", key="k-1").status_code == 200
    assert orders.runs == 1


def test_a_call_without_a_key_never_asks_the_store() -> None:
    backend = Down()
    orders = Orders(api({"backend": backend}))
    assert orders.post("create_order", "{}").status_code == 200
    assert backend.asked == 0


def test_sqlalchemy_listed_first_is_placed_inside_the_plugin(tmp_path: Any) -> None:
    description = api()
    description["plugins"] = {"sqlalchemy": {"url": f"sqlite:///{tmp_path}/x.sqlite3"}, "idempotency": {}}
    service = Service(**description)
    assert [placement.name for placement in service.placements] == ["idempotency", "sqlalchemy"]


def test_the_memory_backend_with_several_workers_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSERVICE_WORKERS", "2")
    with pytest.raises(ApiError) as caught:
        Service(**api())
    assert caught.value.key == "plugins.idempotency.backend"


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"backend": "disk"}, "plugins.idempotency.backend"),
        ({"backend": "redis"}, "plugins.idempotency.redis_url"),
        ({"ttl": 0}, "plugins.idempotency.ttl"),
        ({"on_error": "maybe"}, "plugins.idempotency.on_error"),
        ({"max_key_length": 8}, "plugins.idempotency.max_key_length"),
        ({"tll": 5}, "plugins.idempotency.tll"),
    ],
)
def test_bad_config_fails_at_start_up_naming_the_key(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ApiError) as caught:
        Service(**api(config))
    assert caught.value.key == key


def test_an_unknown_transient_exception_fails_at_start_up() -> None:
    with pytest.raises(ApiError) as caught:
        Service(**api(create_order={"transient": ["Nope"]}))
    assert caught.value.key == "operations.create_order.plugins.idempotency.transient"


def test_idempotency_of_finds_the_plugin() -> None:
    service = Service(**api())
    assert isinstance(idempotency_of(service), Idempotency)
    with pytest.raises(LookupError):
        idempotency_of(Client(operations=["x"]))


class Database(Plugin):
    """A stand-in for a database plugin listed after idempotency: it commits after the answer is encoded."""

    name = "db"
    fail_commits = 0

    def setup(self, owner: Any) -> None:
        if owner.side == "service":
            owner.plugin("request", name=self.name)(self.session)

    def session(self, context: Any) -> None:
        context.process_request()
        if Database.fail_commits:
            Database.fail_commits -= 1
            raise RuntimeError("the commit failed")


def test_an_answer_is_stored_only_once_the_plugin_listed_after_it_committed() -> None:
    description = api()
    description["plugins"] = {"idempotency": {}, "db": {}}
    orders = Orders(description, available_plugins=[Database])
    Database.fail_commits = 1
    assert orders.post("create_order", "{}", key="k-1").status_code == 500  # ran, not committed: not stored
    second = orders.post("create_order", "{}", key="k-1")
    assert second.status_code == 200
    assert REPLAYED_HEADER not in second.headers
    third = orders.post("create_order", "{}", key="k-1")
    assert third.headers[REPLAYED_HEADER] == "true"
    assert orders.runs == 2


class StandInAuth(Plugin):
    """Named like pyservice-auth, to check the order the plugin requires."""

    name = "auth"

    def setup(self, owner: Any) -> None:
        pass


def test_auth_listed_after_the_plugin_is_placed_outside_it() -> None:
    description = api()
    description["plugins"] = {"idempotency": {}, "auth": {}}
    service = Service(**description, available_plugins=[StandInAuth])
    assert [placement.name for placement in service.placements] == ["auth", "idempotency"]


def test_auth_listed_first_is_accepted() -> None:
    description = api()
    description["plugins"] = {"auth": {}, "idempotency": {}}
    Service(**description, available_plugins=[StandInAuth])
