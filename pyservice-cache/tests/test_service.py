from __future__ import annotations

import logging
from typing import Any

import pytest
from pyservice import ApiError, Caller
from pyservice.exceptions import exception_class
from pyservice_cache import Backend, Cache, CallCache, MemoryBackend, cache_of

from .conftest import Items, make_api

URL = "http://127.0.0.1:8080/api/v1"
JSON = {"Content-Type": "application/json"}


def test_a_hit_skips_the_handler_and_inner_hooks() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = {"name": "teapot"}
    client = items.client()
    assert client.get_item(id="1").item == {"name": "teapot"}
    assert client.get_item(id="1").item == {"name": "teapot"}
    assert items.runs["get_item"] == 1
    assert items.inner_hook_runs == 1


def test_a_hit_sends_the_stored_bytes_as_they_are() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    stored = b'{"item": {"name": "teapot"},  "spaced": true}'  # not how orjson would encode it
    items.cache.backend.set(items.cache.key_for("get_item", {"id": "1"}), b"A" + stored, 60)
    answer = items.client().session.post(f"{URL}/get_item", json={"id": "1"})
    assert (answer.status_code, answer.content) == (200, stored)
    assert items.runs["get_item"] == 0


def test_a_miss_stores_the_answer_the_service_sent() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = {"name": "teapot", "tags": ["a"]}
    answer = items.client().session.post(f"{URL}/get_item", data=b'{"id": "1"}', headers=JSON)
    assert items.cache.backend.get(items.cache.key_for("get_item", {"id": "1"})) == b"A" + answer.content


def test_a_hit_is_answered_inside_request_hooks_registered_after_the_plugin() -> None:
    # An authentication plugin listed after cache still runs before a hit is sent.
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = 1
    refused = []

    @items.service.plugin(scope="request")
    def authenticate(context: Any) -> None:
        if context.headers.get("X-Key") != "good":
            refused.append(context.operation)
            raise exception_class("Conflict")("refused")
        context.process_request()

    client = items.client()
    assert client.call("get_item", {"id": "1"}, headers={"X-Key": "good"}).item == 1
    with pytest.raises(client.exceptions.Conflict):
        client.call("get_item", {"id": "1"}, headers={"X-Key": "bad"})
    assert refused == ["get_item"]
    assert "request   plugin cache" in items.service.describe_chain("get_item").splitlines()[2]


def test_a_hit_keeps_the_headers_an_outer_hook_sets() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = 1

    @items.service.plugin(scope="request")
    def stamp(context: Any) -> None:
        context.response_headers.append(("X-Stamp", "yes"))
        context.process_request()

    session = items.client().session
    answers = [session.post(f"{URL}/get_item", json={"id": "1"}) for _ in range(2)]
    assert [answer.headers.get("X-Stamp") for answer in answers] == ["yes", "yes"]
    assert items.runs["get_item"] == 1


def test_a_body_that_is_not_a_json_object_bypasses_the_cache_and_gets_the_protocol_error() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    answer = items.client().session.post(f"{URL}/get_item", data=b"[1, 2]", headers=JSON)
    assert (answer.status_code, answer.json()["error"]["name"]) == (400, "MalformedRequest")
    assert items.cache.stats.bypasses == 1


def test_operations_without_a_cache_entry_are_not_cached() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    client = items.client()
    client.whoami()
    client.whoami()
    assert items.runs["whoami"] == 2
    assert items.cache.operations == {"get_item": "public"}


def test_a_cached_operation_must_declare_its_scope() -> None:
    with pytest.raises(ApiError, match=r"operations.get_item.plugins.cache.scope.*'public'.*'caller'"):
        Items(make_api(get_item={"ttl": 5}))


def test_an_unknown_scope_is_refused_at_start_up() -> None:
    with pytest.raises(ApiError, match=r"scope.*expected 'public'.*got 'everyone'"):
        Items(make_api(get_item={"scope": "everyone"}))


def test_caller_scope_keeps_callers_apart() -> None:
    items = Items(make_api(whoami={"scope": "caller"}))
    alice = items.client(remote_addr="10.0.0.1")
    bob = items.client(remote_addr="10.0.0.2")
    assert alice.whoami().caller == "10.0.0.1"
    assert bob.whoami().caller == "10.0.0.2"
    assert alice.whoami().caller == "10.0.0.1"
    assert bob.whoami().caller == "10.0.0.2"
    assert items.runs["whoami"] == 2


def test_caller_scope_keys_on_the_trusted_caller_before_the_address() -> None:
    items = Items(make_api(whoami={"scope": "caller"}))

    @items.service.plugin(scope="request")
    def authenticate(context: Any) -> None:
        context.caller = context.headers.get("X-User")
        context.process_request()

    client = items.client(remote_addr="10.0.0.1")
    assert client.call("whoami", {}, headers={"X-User": "alice"}).caller == "alice"
    assert client.call("whoami", {}, headers={"X-User": "bob"}).caller == "bob"
    assert client.call("whoami", {}, headers={"X-User": "alice"}).caller == "alice"
    assert items.runs["whoami"] == 2


def test_public_scope_shares_one_answer_between_callers() -> None:
    items = Items(make_api(whoami={"scope": "public"}))
    assert items.client(remote_addr="10.0.0.1").whoami().caller == "10.0.0.1"
    assert items.client(remote_addr="10.0.0.2").whoami().caller == "10.0.0.1"
    assert items.runs["whoami"] == 1


def test_request_field_order_shares_one_entry() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = {"x": 1}
    client = items.client()
    client.call("get_item", {"id": "1", "extra": {"a": 1, "b": 2}})
    client.call("get_item", {"extra": {"b": 2, "a": 1}, "id": "1"})
    assert items.runs["get_item"] == 1


def test_empty_answers_are_hits() -> None:
    items = Items(make_api(nothing={"scope": "public"}))
    client = items.client()
    assert client.nothing() == {}
    assert client.nothing() == {}
    assert items.runs["nothing"] == 1
    assert items.cache.stats.hits == 1


def test_null_answers_are_hits() -> None:
    items = Items(make_api(nothing={"scope": "public"}))
    client = items.client()
    assert client.nothing(null=True) == {"value": None}
    assert client.nothing(null=True) == {"value": None}
    assert items.runs["nothing"] == 1


def test_exceptions_are_not_cached_by_default() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    client = items.client()
    for _ in range(2):
        with pytest.raises(client.exceptions.DoesNotExist):
            client.get_item(id="nope")
    assert items.runs["get_item"] == 2


def test_negative_caching_replays_a_whitelisted_exception_with_its_args() -> None:
    items = Items(make_api(get_item={"scope": "public", "negative": ["DoesNotExist"], "negative_ttl": 30}))
    client = items.client()
    for _ in range(2):
        with pytest.raises(client.exceptions.DoesNotExist) as raised:
            client.get_item(id="nope")
        assert raised.value.args == ("no item nope", "nope")
    assert items.runs["get_item"] == 1


def test_a_replayed_exception_is_the_whitelisted_class_on_the_service() -> None:
    items = Items(make_api(get_item={"scope": "public", "negative": ["DoesNotExist"]}))
    seen: list[tuple[str, BaseException]] = []

    @items.service.plugin(scope="request")
    def observe(context: Any) -> None:
        try:
            context.process_request()
        except Exception as exc:
            seen.append((context.cache_outcome, exc))
            raise

    client = items.client()
    for _ in range(2):
        with pytest.raises(client.exceptions.DoesNotExist):
            client.get_item(id="nope")
    assert [outcome for outcome, _ in seen] == ["miss", "hit"]
    assert type(seen[1][1]) is exception_class("DoesNotExist")
    assert seen[1][1].args == ("no item nope", "nope")


def test_negative_caching_names_only_whitelisted_exceptions() -> None:
    with pytest.raises(ApiError, match=r"negative.*'Missing' is not one of the api's exceptions"):
        Items(make_api(get_item={"scope": "public", "negative": ["Missing"]}))


def test_an_entry_naming_an_exception_the_operation_does_not_replay_is_a_miss() -> None:
    # Whoever can write to a shared store must not make a worker raise SystemExit.
    items = Items(make_api(get_item={"scope": "public", "negative": ["DoesNotExist"]}))
    items.items["1"] = {"x": 1}
    key = items.cache.key_for("get_item", {"id": "1"})
    items.cache.backend.set(key, b'E["SystemExit",[1]]', 60)
    assert items.client().get_item(id="1").item == {"x": 1}
    assert items.runs["get_item"] == 1


def test_an_entry_that_is_not_json_is_a_miss() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = {"x": 1}
    items.cache.backend.set(items.cache.key_for("get_item", {"id": "1"}), b"\x80\x04pickle", 60)
    assert items.client().get_item(id="1").item == {"x": 1}
    assert items.runs["get_item"] == 1


def test_answers_with_a_changed_status_are_not_cached() -> None:
    items = Items(make_api(status_changed={"scope": "public"}))
    session = items.client().session
    for _ in range(2):
        answer = session.post("http://127.0.0.1:8080/api/v1/status_changed", json={})
        assert (answer.status_code, answer.json()) == (202, {"accepted": True})
    assert items.runs["status_changed"] == 2


def test_a_handler_invalidates_one_request_of_another_operation() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    client = items.client()
    client.put_item(id="1", item="old")
    client.put_item(id="2", item="two")
    assert client.get_item(id="1").item == "old"
    assert client.get_item(id="2").item == "two"
    client.put_item(id="1", item="new")
    assert items.invalidated[-1] == 1
    assert client.get_item(id="1").item == "new"
    assert client.get_item(id="2").item == "two"
    assert items.runs["get_item"] == 3


def test_invalidating_an_operation_deletes_all_its_answers() -> None:
    items = Items(make_api(get_item={"scope": "public"}, whoami={"scope": "caller"}))
    items.items.update({"1": 1, "2": 2})
    client = items.client()
    client.get_item(id="1")
    client.get_item(id="2")
    client.whoami()
    assert items.cache.invalidate("get_item") == 2
    client.get_item(id="1")
    client.whoami()
    assert items.runs == {**items.runs, "get_item": 3, "whoami": 1}


def test_invalidate_all_deletes_every_answer() -> None:
    items = Items(make_api(get_item={"scope": "public"}, whoami={"scope": "caller"}))
    items.items["1"] = 1
    client = items.client()
    client.get_item(id="1")
    client.whoami()
    assert items.cache.invalidate_all() == 2
    client.get_item(id="1")
    client.whoami()
    assert (items.runs["get_item"], items.runs["whoami"]) == (2, 2)


def test_invalidating_a_caller_scoped_answer_needs_the_caller() -> None:
    items = Items(make_api(whoami={"scope": "caller"}))
    client = items.client(remote_addr="10.0.0.9")
    client.whoami()
    with pytest.raises(ValueError, match="cached per caller: pass caller="):
        items.cache.invalidate("whoami", {})
    assert items.cache.invalidate("whoami", {}, caller=Caller.anonymous("10.0.0.8")) == 0
    assert items.cache.invalidate("whoami", {}, caller=Caller.anonymous("10.0.0.9")) == 1


def test_a_handler_invalidates_the_current_callers_answer_by_default() -> None:
    deleted: list[int] = []
    items = Items(
        make_api(whoami={"scope": "caller"}),
        before=lambda request, context: deleted.append(context.cache.invalidate("whoami", {})),
    )
    alice, bob = items.client(remote_addr="10.0.0.1"), items.client(remote_addr="10.0.0.2")
    alice.whoami()
    bob.whoami()
    items.items["1"] = 1
    alice.get_item(id="1")
    alice.whoami()
    bob.whoami()
    assert (deleted, items.runs["whoami"]) == ([1], 3)


def test_invalidating_with_a_bare_string_caller_is_refused() -> None:
    items = Items(make_api(whoami={"scope": "caller"}))
    with pytest.raises(TypeError, match=r"Caller\.anonymous\('10\.0\.0\.9'\)"):
        items.cache.invalidate("whoami", {}, caller="10.0.0.9")


def test_invalidate_key_deletes_the_entry_under_key_for() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = 1
    items.client().get_item(id="1")
    assert items.cache.invalidate_key(items.cache.key_for("get_item", {"id": "1"})) == 1
    items.client().get_item(id="1")
    assert items.runs["get_item"] == 2


def test_invalidating_an_operation_that_is_not_cached_is_an_error() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    with pytest.raises(ValueError, match=r"'whoami' is not cached here \(cached: get_item\)"):
        items.cache.invalidate("whoami")


def test_statistics_count_hits_misses_stores_and_invalidations() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = 1
    client = items.client()
    client.get_item(id="1")
    client.get_item(id="1")
    client.get_item(id="1")
    items.cache.invalidate("get_item", {"id": "1"})
    assert items.cache.stats.snapshot() == {
        "hits": 2,
        "misses": 1,
        "stores": 1,
        "bypasses": 0,
        "errors": 0,
        "invalidations": 1,
        "evictions": 0,
    }


def test_the_call_outcome_and_the_handle_are_on_the_context() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    items.items["1"] = 1
    seen: list[tuple[str, Any]] = []

    @items.service.plugin(scope="request")
    def observe(context: Any) -> None:
        context.process_request()
        seen.append((context.cache_outcome, context.cache))
        annotated.append(dict(context.annotations))

    annotated: list[dict[str, Any]] = []
    client = items.client()
    client.get_item(id="1")
    client.get_item(id="1")
    assert [outcome for outcome, _ in seen] == ["miss", "hit"]
    # What a logging plugin adds to the call's event.
    assert annotated == [{"cache": "miss"}, {"cache": "hit"}]
    assert all(isinstance(handle, CallCache) for _, handle in seen)
    assert seen[1][1].stats.hits == 1


def test_an_operation_switched_off_gets_no_handle() -> None:
    api = make_api(get_item={"scope": "public"})
    api["operations"]["whoami"] = {"plugins": {"cache": False}}
    items = Items(api)
    assert items.client().whoami().caller == "127.0.0.1"
    assert "Cache" not in items.service.describe_chain("whoami")


def test_the_client_side_is_off_unless_sides_names_it() -> None:
    items = Items(make_api(get_item={"scope": "public"}))
    from pyservice.testing import client_for

    client = client_for(items.service, available_plugins=[Cache])
    items.items["1"] = 1
    client.get_item(id="1")
    client.get_item(id="1")
    assert cache_of(client).operations == {}
    assert items.runs["get_item"] == 1  # the service's cache answered the second call


def test_the_redis_backend_needs_a_url() -> None:
    with pytest.raises(ApiError, match=r"plugins.cache.redis_url.*required when backend is 'redis'"):
        Items(make_api({"backend": "redis"}, get_item={"scope": "public"}))


def test_an_unknown_backend_is_refused_at_start_up() -> None:
    with pytest.raises(ApiError, match=r"plugins.cache.backend.*'memory', 'redis' or a Backend instance"):
        Items(make_api({"backend": "memcached"}, get_item={"scope": "public"}))


def test_the_redis_url_is_masked_in_the_chain_description() -> None:
    items = Items(
        make_api({"backend": "redis", "redis_url": "redis://:hunter2@127.0.0.1:1/0"}, get_item={"scope": "public"})
    )
    assert "hunter2" not in items.service.describe_chain(verbose=True)
    assert "hunter2" not in repr(items.cache.backend)


class FailingBackend(Backend):
    def __init__(self) -> None:
        self.calls = 0

    def _fail(self) -> Any:
        from pyservice_cache import BackendUnavailable

        self.calls += 1
        raise BackendUnavailable("store on fire")

    def get(self, key: str) -> bytes | None:
        return self._fail()  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._fail()

    def delete(self, key: str) -> int:
        return self._fail()  # type: ignore[no-any-return]

    def delete_prefix(self, prefix: str) -> int:
        return self._fail()  # type: ignore[no-any-return]


def test_a_failing_backend_degrades_to_no_caching_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    backend = FailingBackend()
    items = Items(make_api({"backend": backend, "warn_interval": 3600}, get_item={"scope": "public"}))
    items.items["1"] = 1
    client = items.client()
    with caplog.at_level(logging.WARNING, logger="pyservice.cache"):
        for _ in range(5):
            assert client.get_item(id="1").item == 1
    assert items.runs["get_item"] == 5
    warnings = [record for record in caplog.records if record.name == "pyservice.cache"]
    assert len(warnings) == 1
    assert "store on fire" in warnings[0].getMessage()
    # retry_interval (1 s) keeps the failed backend from being asked on every call.
    assert backend.calls == 1
    assert items.cache.stats.errors == 1


def test_invalidation_with_a_failing_backend_returns_zero() -> None:
    items = Items(make_api({"backend": FailingBackend()}, get_item={"scope": "public"}))
    assert items.cache.invalidate("get_item", {"id": "1"}) == 0
    assert items.cache.stats.errors == 1


def test_a_backend_instance_is_used_as_given() -> None:
    backend = MemoryBackend(10, 10_000)
    items = Items(make_api({"backend": backend}, get_item={"scope": "public"}))
    items.items["1"] = 1
    items.client().get_item(id="1")
    assert items.cache.backend is backend
    assert len(backend) == 1


class CountingBackend(MemoryBackend):
    """A memory backend that says one operation may take a second, as a remote store would."""

    timeout = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        return super().get(key)


def test_a_call_with_less_time_left_than_a_round_trip_does_not_touch_the_backend() -> None:
    backend = CountingBackend()
    items = Items(make_api({"backend": backend}, get_item={"scope": "public"}))
    items.items["1"] = 1
    annotated: list[dict[str, Any]] = []

    @items.service.plugin(scope="request")
    def observe(context: Any) -> None:
        context.process_request()
        annotated.append(dict(context.annotations))

    client = items.client()
    assert client.call("get_item", {"id": "1"}, headers={"Pyservice-Timeout": "5"}).item == 1
    assert client.call("get_item", {"id": "1"}, headers={"Pyservice-Timeout": "0.5"}).item == 1
    assert backend.calls == 1  # the first call's lookup only
    assert items.runs["get_item"] == 2
    assert annotated[1] == {"cache": "miss", "cache_error": "deadline"}
    assert items.cache.stats.errors == 0
