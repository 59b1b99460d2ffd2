"""Value checks for ``Option``, shared by the core and plugins.

Each check takes the value (already of the Option's type), returns the value
to keep, and raises ``ValueError`` saying what was expected; the Option adds
the key and what came::

    Option(float, 0.1, "Seconds per Redis command.", check=checks.positive)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = [
    "callable_or_import",
    "import_object",
    "non_negative",
    "non_negative_int",
    "one_of",
    "positive",
    "positive_int",
]

N = TypeVar("N", int, float)


def positive(value: N) -> N:
    """A number greater than 0."""
    if value <= 0:
        raise ValueError("expected a number greater than 0")
    return value


def positive_int(value: int) -> int:
    """An integer greater than 0."""
    if value <= 0:
        raise ValueError("expected an integer greater than 0")
    return value


def non_negative(value: N) -> N:
    """A number of at least 0."""
    if value < 0:
        raise ValueError("expected a number of at least 0")
    return value


def non_negative_int(value: int) -> int:
    """An integer of at least 0."""
    if value < 0:
        raise ValueError("expected an integer of at least 0")
    return value


def one_of(choices: Iterable[str]) -> Callable[[str], str]:
    """A check that the value is one of ``choices``."""
    allowed = tuple(choices)
    shown = ", ".join(repr(choice) for choice in allowed)

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {shown}")
        return value

    return check


def import_object(target: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted) and return it.

    Raises:
        ValueError: ``target`` is not of that form, or does not import.
    """
    module_name, separator, attribute = target.partition(":")
    if not separator or not module_name or not attribute:
        raise ValueError("expected 'module:attribute'")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"expected an importable 'module:attribute' ({exc})") from None
    return found


def callable_or_import(value: object) -> Callable[..., Any] | None:
    """A callable, or ``module:attribute`` naming one; ``None`` stays ``None``."""
    if value is None:
        return None
    found = import_object(value) if isinstance(value, str) else value
    if not callable(found):
        raise ValueError("expected a callable, or 'module:attribute' naming one")
    return found  # type: ignore[no-any-return]
