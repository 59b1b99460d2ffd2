"""Exception classes built by name: stable identity, builtins, pickling, bad names."""

from __future__ import annotations

import pickle

import pyservice
import pytest
from pyservice.exceptions import ExceptionNamespace, exception_class


def test_a_name_builds_one_class_for_the_whole_process():
    service = pyservice.Service(operations=[])
    client = pyservice.Client(operations=[])
    cls = service.exceptions.NotFoundHere
    assert cls is client.exceptions.NotFoundHere
    assert cls is exception_class("NotFoundHere")
    assert cls is service.exceptions["NotFoundHere"]
    assert issubclass(cls, pyservice.ServiceException)
    assert cls.__name__ == cls.__qualname__ == "NotFoundHere"
    assert cls.__module__ == "pyservice.exceptions"


def test_the_module_exports_built_classes_by_name():
    from pyservice.exceptions import ImportedByName

    assert ImportedByName is exception_class("ImportedByName")


def test_builtin_names_resolve_to_the_builtins():
    namespace = ExceptionNamespace()
    assert namespace.KeyError is KeyError
    assert namespace.TimeoutError is TimeoutError


@pytest.mark.parametrize("name", ["print", "len", "_private", "not an identifier", "1abc"])
def test_a_name_that_cannot_be_an_exception_is_refused(name):
    with pytest.raises(AttributeError):
        exception_class(name)
    with pytest.raises(KeyError):
        ExceptionNamespace()[name]


def test_a_built_exception_pickles_to_the_same_class():
    error = exception_class("Pickled")("message", 3)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert again.args == ("message", 3)
