"""Container: the request and response objects."""

from __future__ import annotations

import copy
import pickle

import orjson
import pytest
from pyservice import Container
from pyservice._wire import encode


def test_attributes_and_items_are_the_same_fields():
    fields = Container(a=1)
    fields.b = 2
    fields["c"] = 3
    assert (fields.a, fields["b"], fields.c) == (1, 2, 3)
    assert dict(fields) == {"a": 1, "b": 2, "c": 3}
    assert vars(fields) == {"a": 1, "b": 2, "c": 3}


def test_a_missing_field_reads_as_none_but_item_access_raises():
    fields = Container()
    assert fields.missing is None
    with pytest.raises(KeyError):
        fields["missing"]


def test_it_is_a_mutable_mapping():
    fields = Container({"a": 1})
    fields.update(b=2)
    assert len(fields) == 2
    assert "a" in fields
    assert list(fields) == ["a", "b"]
    assert fields.get("z", 0) == 0
    del fields.a
    assert fields == {"b": 2}
    with pytest.raises(AttributeError):
        del fields.a


def test_a_field_named_like_a_method_is_the_field():
    fields = Container(items=[1, 2], keys="k")
    assert fields.items == [1, 2]
    assert dict(Container.items(fields)) == {"items": [1, 2], "keys": "k"}


def test_wrap_shares_the_dict():
    data = {"a": 1}
    fields = Container.wrap(data)
    fields.b = 2
    assert data == {"a": 1, "b": 2}


def test_equality_with_dicts_and_containers():
    assert Container(a=1) == {"a": 1}
    assert Container(a=1) == Container(a=1)
    assert Container(a=1) != {"a": 2}
    assert Container(a=1) != [("a", 1)]


def test_copy_and_pickle_keep_the_fields():
    fields = Container(a=[1])
    assert copy.deepcopy(fields) == fields
    assert pickle.loads(pickle.dumps(fields)) == fields
    assert repr(fields) == "Container({'a': [1]})"


def test_nested_containers_encode_as_their_fields():
    fields = Container(inner=Container(x=1), plain={"y": Container(z=2)})
    assert orjson.loads(encode(fields)) == {"inner": {"x": 1}, "plain": {"y": {"z": 2}}}


def test_an_unencodable_value_still_fails():
    with pytest.raises(TypeError):
        encode(Container(x=object()))
