"""JSON encoding of the fields the core hands over (Containers included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["dumps", "sorted_dumps"]


def _plain(value: Any) -> Any:
    # A Container (or any other mapping orjson does not know) encodes as its
    # fields; the core's Container need not be a dict subclass.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Encode ``value`` as JSON.

    Raises:
        TypeError: something in ``value`` is not JSON.
    """
    return orjson.dumps(value, default=_plain)


def sorted_dumps(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON: object keys sorted at every depth.

    Raises:
        TypeError: something in ``value`` is not JSON.
    """
    return orjson.dumps(value, default=_plain, option=orjson.OPT_SORT_KEYS)
