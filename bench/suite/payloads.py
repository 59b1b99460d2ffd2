"""Request bodies: the small call every section uses, and bodies of a given size."""

from __future__ import annotations

from typing import Any

import orjson

SMALL: dict[str, Any] = {"id": 7, "name": "teapot", "qty": 3, "price": 2.5}
SMALL_BODY = orjson.dumps(SMALL)


def numbered(serial: int) -> bytes:
    """The small request with its id changed: a different request every call."""
    return orjson.dumps({**SMALL, "id": serial})


def of_size(size: int) -> dict[str, Any]:
    """A request whose encoding is about ``size`` bytes: ``data`` holds small records,
    the shape of a real list answer, rather than one long string (which decodes
    at memcpy speed and would flatter every framework alike)."""
    request: dict[str, Any] = dict(SMALL)
    base = len(orjson.dumps(request))
    if size <= base + 12:
        return request
    record = {"sku": "AB-12345", "qty": 12, "price": 9.99, "tags": ["red", "large"]}
    one = len(orjson.dumps(record)) + 1
    records = max(0, (size - base - 10) // one)
    request["data"] = [dict(record, qty=i % 100) for i in range(records)]
    encoded = len(orjson.dumps(request))
    while encoded > size and request["data"]:
        del request["data"][-(encoded - size) // one - 1 :]
        encoded = len(orjson.dumps(request))
    if encoded < size:
        request["pad"] = "x" * max(0, size - encoded - 9)
    return request
