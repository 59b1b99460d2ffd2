from __future__ import annotations

import hashlib

import orjson
from hypothesis import given
from hypothesis import strategies as st
from pyservice_cache import KEY_FORMAT_VERSION
from pyservice_cache._keys import KeyMaker

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


def maker(**overrides: str) -> KeyMaker:
    fields = {"prefix": "p", "side": "service", "api_name": "items", "version": "v1", "operation": "get_item"}
    fields.update(overrides)
    return KeyMaker(**fields)


def test_field_order_does_not_change_the_key() -> None:
    keys = maker()
    assert keys.key({"a": 1, "b": {"x": 1, "y": [1, {"q": 1, "p": 2}]}}, None) == keys.key(
        {"b": {"y": [1, {"p": 2, "q": 1}], "x": 1}, "a": 1}, None
    )


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6))
def test_reordered_requests_have_one_key(request: dict[str, object]) -> None:
    keys = maker()
    reordered = dict(reversed(list(request.items())))
    assert keys.key(request, "caller") == keys.key(reordered, "caller")


def test_key_is_the_versioned_prefix_and_a_sha256_of_the_canonical_encoding() -> None:
    key = maker().key({"id": 1, "a": [2]}, "10.0.0.1")
    canonical = orjson.dumps([KEY_FORMAT_VERSION, "service", "items", "get_item", "v1"]) + orjson.dumps(
        [{"a": [2], "id": 1}, "10.0.0.1"]
    )
    assert key == f"p:{KEY_FORMAT_VERSION}:service:items:get_item:" + hashlib.sha256(canonical).hexdigest()


def test_caller_never_appears_in_clear() -> None:
    assert "alice" not in maker().key({"id": 1}, "alice")


def test_every_identifying_field_changes_the_key() -> None:
    base = maker().key({"id": 1}, "alice")
    assert maker().key({"id": 2}, "alice") != base
    assert maker().key({"id": 1}, "bob") != base
    assert maker().key({"id": 1}, None) != base
    assert maker(version="v2").key({"id": 1}, "alice") != base
    assert maker(operation="get_other").key({"id": 1}, "alice") != base
    assert maker(api_name="shop").key({"id": 1}, "alice") != base
    assert maker(side="client").key({"id": 1}, "alice") != base


def test_values_of_different_json_types_have_different_keys() -> None:
    keys = maker()
    assert keys.key({"id": 1}, None) != keys.key({"id": "1"}, None)
    assert keys.key({"id": None}, None) != keys.key({}, None)


def test_containers_encode_canonically_like_dicts() -> None:
    from pyservice import Container

    keys = maker()
    assert keys.key(Container({"b": 1, "a": {"y": 1, "x": 2}}), None) == keys.key({"a": {"x": 2, "y": 1}, "b": 1}, None)
    assert keys.key(Container({"b": 1, "a": 2}), None) == keys.key(Container({"a": 2, "b": 1}), None)


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4), st.none() | st.text(max_size=5))
def test_the_key_of_a_raw_body_is_the_key_of_its_decoded_fields(request: dict[str, object], caller: object) -> None:
    keys = maker()
    body = orjson.dumps(request, option=orjson.OPT_INDENT_2)  # any encoding of the same fields
    assert keys.body_key(body, caller) == keys.key(request, caller)


def test_a_body_that_is_not_a_json_object_has_no_key() -> None:
    keys = maker()
    assert [keys.body_key(body, None) for body in (b"[1]", b"not json", b"")] == [None, None, None]
