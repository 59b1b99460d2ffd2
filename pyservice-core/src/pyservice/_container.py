"""The request and response objects handlers receive and clients return."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any


class Container(MutableMapping[str, Any]):
    """A mapping whose keys are also its attributes.

    ``request.id`` is ``request["id"]``, and ``response.id = 1`` sets
    ``response["id"]``. A key that is missing reads as ``None`` through
    attribute access (item access still raises ``KeyError``), so
    ``if request.item is None`` needs no ``in`` test. It is a full
    ``MutableMapping``: ``len``, ``in``, iteration, ``update``, ``get``...
    Nested objects stay plain dicts and lists.

    The fields live in the instance's ``__dict__``, which is what makes
    attribute access as fast as on any object; ``vars(container)`` is the
    plain dict behind it. It is not a ``dict`` subclass (a dict subclass pays
    for every attribute read with a caught AttributeError), so the standard
    library's ``json.dumps`` needs ``dict(container)``; pyservice's own
    encoding, and orjson with ``default=vars``, take it as it is. A field named like a mapping method (``items``,
    ``keys``, ``get``, ``update``...) is what attribute access returns, and
    the method stays reachable through the class: ``Container.items(c)``.
    """

    def __init__(self, fields: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        if fields:
            self.__dict__.update(fields)
        if more:
            self.__dict__.update(more)

    @classmethod
    def wrap(cls, fields: dict[str, Any]) -> Container:
        """Wrap ``fields`` without copying it: the container and the dict share their keys."""
        container = _new(cls)
        container.__dict__ = fields
        return container

    def __getattr__(self, name: str) -> Any:
        # Only reached for missing keys: present ones are ordinary attributes.
        if name.startswith("__"):
            # Keep copy, pickle and friends from mistaking us for a proxy.
            raise AttributeError(name)
        return None

    if TYPE_CHECKING:
        # For type checkers only: ``response.greeting = ...`` sets a field. Defined for real,
        # it would make every field assignment a Python call; object's own is what runs.
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __delitem__(self, key: str) -> None:
        del self.__dict__[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __len__(self) -> int:
        return len(self.__dict__)

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or ``default`` when it is missing."""
        # Mapping.get goes through __getitem__ and a caught KeyError: six times slower.
        return self.__dict__.get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Container):
            return self.__dict__ == other.__dict__
        if isinstance(other, Mapping):
            return self.__dict__ == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


_new = object.__new__


def wrap(fields: dict[str, Any], _new: Any = _new, _cls: type[Container] = Container) -> Container:
    """``Container.wrap`` for the hot path: no method lookup, no copy."""
    container: Container = _new(_cls)
    container.__dict__ = fields
    return container


#: An empty Container, made without running ``__init__`` (its dict appears on first write).
new_container: Callable[[], Container] = functools.partial(_new, Container)


def to_json_value(value: Any) -> Any:
    """orjson's ``default`` hook: a Container nested in a response encodes as its fields."""
    if isinstance(value, Container):
        return value.__dict__
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class UndeclaredField(AttributeError):
    """A handler read a request field that its operation's declared ``input`` does not name.

    Raised in debug mode only (the api's ``debug``), where a typo like
    ``request.nam`` would otherwise read as ``None``. An ``AttributeError``,
    so ``getattr(request, name, default)`` and ``hasattr`` still work.
    """


def declared_request_class(operation: str, structure: Any) -> type[Container]:
    """A Container whose missing attributes are ``None`` only for the fields ``structure`` declares.

    The requests of an operation with a declared ``input`` take this class in
    debug mode; outside it they stay plain Containers, so the check costs
    nothing there.
    """
    declared = frozenset(structure.fields)
    known = ", ".join(structure.fields) or "none"

    class DeclaredRequest(Container):
        __slots__ = ()

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            if name in declared:
                return None
            raise UndeclaredField(
                f"request.{name}: operation {operation!r} declares no such input field (declared: {known})"
            )

    DeclaredRequest.__qualname__ = DeclaredRequest.__name__ = "Container"
    return DeclaredRequest
