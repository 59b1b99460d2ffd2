"""What a cache entry holds: an answer or a whitelisted exception, as JSON bytes.

Entries are JSON, never pickle: whoever can write to a shared cache must not
be able to run code in the processes that read it. A tag byte tells the two
kinds apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson
from pyservice.exceptions import exception_class

from ._json import dumps

__all__ = ["decode", "encode_answer", "encode_error"]

_ANSWER = b"A"
_ERROR = b"E"
_ANSWER_TAG = _ANSWER[0]
_ERROR_TAG = _ERROR[0]


def encode_answer(response: Mapping[str, Any]) -> bytes | None:
    """The entry of a successful answer, or ``None`` when it is not JSON."""
    try:
        return _ANSWER + dumps(response)
    except TypeError:
        return None


def encode_error(name: str, args: tuple[Any, ...]) -> bytes | None:
    """The entry of a whitelisted exception, or ``None`` when its args are not JSON."""
    try:
        return _ERROR + dumps([name, list(args)])
    except TypeError:
        return None


def decode(entry: bytes, allowed_errors: Collection[str]) -> dict[str, Any] | BaseException | None:
    """Read an entry back.

    Args:
        entry: the stored bytes.
        allowed_errors: the exception names this operation may replay; an
            entry naming any other (``SystemExit`` written by someone with
            access to the store) is refused.

    Returns:
        The answer's fields, the exception to raise, or ``None`` for an
        entry that is not one this format writes (treated as a miss).
    """
    if not entry:
        return None
    tag = entry[0]
    try:
        data = orjson.loads(memoryview(entry)[1:])
    except orjson.JSONDecodeError:
        return None
    if tag == _ANSWER_TAG:
        return data if type(data) is dict else None
    if tag == _ERROR_TAG and type(data) is list and len(data) == 2:
        name, args = data
        if isinstance(name, str) and name in allowed_errors and type(args) is list:
            return exception_class(name)(*args)
    return None
