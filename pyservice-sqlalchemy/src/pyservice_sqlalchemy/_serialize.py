"""ORM objects and result rows as plain dicts, ready for a response."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, inspect
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import Mapper

__all__ = ["to_dict"]

_Tree = dict[str, "_Tree"]


def to_dict(
    obj: Any,
    *,
    relationships: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> dict[str, Any]:
    """An ORM object or a result row as a dict of JSON-ready values.

    An ORM object gives its declared column attributes, under their
    attribute names; relationships are left out unless named, so a response
    never walks the object graph by accident. A row gives its columns by
    label; ORM objects in it are converted the same way. ``Decimal`` values
    become strings, so no precision is lost on the way to JSON.

    Args:
        obj: an instance of a mapped class, or a ``Row``.
        relationships: relationships to include, as attribute names;
            dotted paths reach further (``("lines", "lines.product")``).
        exclude: column attributes to leave out of ``obj`` itself.

    Returns:
        A new dict.

    Raises:
        TypeError: ``obj`` is neither a mapped instance nor a row.
        ValueError: a relationship that the class does not have.
    """
    tree = _tree(relationships)
    return _convert(obj, tree, frozenset(exclude))


def _tree(paths: Iterable[str]) -> _Tree:
    if isinstance(paths, str):
        raise TypeError(f"relationships: expected an iterable of names, got the string {paths!r}")
    tree: _Tree = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _convert(obj: Any, tree: _Tree, exclude: frozenset[str]) -> dict[str, Any]:
    if isinstance(obj, Row):
        return {key: _value(value, tree) for key, value in obj._mapping.items() if key not in exclude}
    try:
        mapper: Mapper[Any] = inspect(obj).mapper
    except (NoInspectionAvailable, AttributeError):
        raise TypeError(f"to_dict: expected an ORM object or a Row, got {type(obj).__name__}") from None
    result = {attr.key: _value(getattr(obj, attr.key), {}) for attr in mapper.column_attrs if attr.key not in exclude}
    for name, nested in tree.items():
        relationship = mapper.relationships.get(name)
        if relationship is None:
            known = ", ".join(sorted(mapper.relationships.keys())) or "none"
            raise ValueError(f"to_dict: {mapper.class_.__name__} has no relationship {name!r} (it has: {known})")
        value = getattr(obj, name)
        if value is None:
            result[name] = None
        elif relationship.uselist:
            result[name] = [_convert(item, nested, frozenset()) for item in value]
        else:
            result[name] = _convert(value, nested, frozenset())
    return result


def _value(value: Any, tree: _Tree) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Row) or hasattr(value, "_sa_instance_state"):
        return _convert(value, tree, frozenset())
    return value
