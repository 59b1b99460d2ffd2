"""Case-insensitive, read-only access to a request's headers in a WSGI environ."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# WSGI drops the HTTP_ prefix of these two (PEP 3333).
_UNPREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


class EnvironHeaders(Mapping[str, str]):
    """The request headers of a WSGI environ, read in place.

    ``headers["x-api-key"]`` reads ``environ["HTTP_X_API_KEY"]``: nothing is
    copied, so looking up one header costs one dict lookup.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in _UNPREFIXED else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        value = self._environ[self._key(name)]
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """The header's value, or ``default`` when it is absent."""
        value = self._environ.get(self._key(name), default)
        return value if isinstance(value, str) else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._environ

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").title()
            elif key in _UNPREFIXED and self._environ[key]:
                yield _UNPREFIXED[key]

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"EnvironHeaders({dict(self)!r})"
