"""pyservice.checks: the value checks options share."""

from __future__ import annotations

import pytest
from pyservice import checks


@pytest.mark.parametrize(
    ("check", "good", "bad", "words"),
    [
        (checks.positive, 0.5, 0, "greater than 0"),
        (checks.positive_int, 1, 0, "integer greater than 0"),
        (checks.non_negative_int, 0, -1, "at least 0"),
        (checks.one_of(["json", "console"]), "json", "xml", "one of 'json', 'console'"),
    ],
)
def test_a_check_keeps_good_values_and_says_what_it_expected(check, good, bad, words):
    assert check(good) == good
    with pytest.raises(ValueError, match=words):
        check(bad)


def test_import_object_imports_module_attribute():
    assert checks.import_object("os.path:join.__name__") == "join"
    for target in ("os.path", "no_such_module_here:x", "os:no_such_attribute"):
        with pytest.raises(ValueError, match="module:attribute"):
            checks.import_object(target)


def test_callable_or_import_takes_a_callable_or_its_path():
    assert checks.callable_or_import(len) is len
    assert checks.callable_or_import("builtins:len") is len
    assert checks.callable_or_import(None) is None
    with pytest.raises(ValueError, match="callable"):
        checks.callable_or_import("os:sep")
