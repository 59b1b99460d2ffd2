"""The request and response objects handlers receive and clients return."""

from __future__ import annotations

from typing import Any


class Container(dict[str, Any]):
    """A dict whose keys can also be read and written as attributes.

    ``request.id`` is ``request["id"]``; a key that is missing reads as
    ``None`` through attribute access (item access still raises KeyError),
    so ``if request.item is None`` needs no ``in`` test. Keys that are also
    dict methods (``items``, ``keys``...) are reachable through item access
    only. Nested objects stay plain dicts.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            # Keep copy, pickle and friends from mistaking us for a proxy.
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"
