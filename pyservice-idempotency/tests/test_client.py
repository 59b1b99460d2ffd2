from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from conftest import api
from pyservice import Client
from pyservice.testing import client_for


class Recorder:
    """A WSGI app that records each request's Idempotency-Key and plays a list of answers."""

    def __init__(self, answers: Iterable[tuple[str, list[tuple[str, str]], bytes]] = ()) -> None:
        self.answers = list(answers)
        self.keys: list[str | None] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.keys.append(environ.get("HTTP_IDEMPOTENCY_KEY"))
        status, headers, body = self.answers.pop(0) if self.answers else ("200 OK", [], b"{}")
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
        return [body]


IN_USE = (
    "409 Conflict",
    [("Retry-After", "0")],
    b'{"error": {"kind": "exception", "name": "IdempotencyKeyInUse", "message": "running", "args": ["running"]}}',
)
CONFLICT = (
    "409 Conflict",
    [],
    b'{"error": {"kind": "exception", "name": "OutOfStock", "message": "none", "args": ["none"]}}',
)
UNAVAILABLE = ("503 Service Unavailable", [], b'{"error": {"kind": "protocol", "name": "ServiceUnavailable"}}')


def client(app: Recorder, description: dict[str, Any] | None = None) -> Client:
    return client_for(app, description or api())


def test_a_call_of_an_operation_not_declared_idempotent_carries_a_uuid_key() -> None:
    app = Recorder()
    client(app).call("create_order", {"item": "bolt"})
    (key,) = app.keys
    assert key is not None
    assert uuid.UUID(key).version == 4


def test_each_call_gets_a_new_key() -> None:
    app = Recorder()
    orders = client(app)
    orders.call("create_order", {})
    orders.call("create_order", {})
    assert len(set(app.keys)) == 2


def test_an_idempotent_operation_gets_no_key() -> None:
    app = Recorder()
    client(app).call("get_order", {"id": 1})
    assert app.keys == [None]


def test_an_operation_switched_off_gets_no_key() -> None:
    app = Recorder()
    client(app, api(create_order=False)).call("create_order", {})
    assert app.keys == [None]


def test_the_applications_key_is_sent_as_it_is() -> None:
    app = Recorder()
    client(app).call("create_order", {}, idempotency_key="order-2024-0001")
    assert app.keys == ["order-2024-0001"]


def test_the_applications_header_in_any_case_is_kept_and_not_doubled() -> None:
    app = Recorder()
    client(app).call("create_order", {}, headers={"idempotency-key": "mine"})
    assert app.keys == ["mine"]


def test_a_409_in_use_is_sent_again_with_the_same_key_after_retry_after() -> None:
    app = Recorder([IN_USE, IN_USE])
    client(app).call("create_order", {})
    assert len(app.keys) == 3
    assert len(set(app.keys)) == 1


def test_a_409_in_use_is_raised_once_in_use_retries_are_spent() -> None:
    app = Recorder([IN_USE, IN_USE, IN_USE])
    orders = client(app, api({"in_use_retries": 2}))
    with pytest.raises(orders.exceptions.IdempotencyKeyInUse):
        orders.call("create_order", {})
    assert len(app.keys) == 3


def test_a_409_without_retry_after_is_the_applications_answer() -> None:
    app = Recorder([CONFLICT])
    orders = client(app)
    with pytest.raises(orders.exceptions.OutOfStock):
        orders.call("create_order", {})
    assert len(app.keys) == 1


def test_with_the_applications_key_a_transport_retry_sends_the_same_key() -> None:
    app = Recorder([UNAVAILABLE])
    client(app).call("create_order", {}, idempotency_key="k-1")
    assert app.keys == ["k-1", "k-1"]


def test_with_the_plugins_key_a_transport_retry_sends_the_same_key() -> None:
    app = Recorder([UNAVAILABLE])
    client(app).call("create_order", {})
    assert len(app.keys) == 2
    assert len(set(app.keys)) == 1
