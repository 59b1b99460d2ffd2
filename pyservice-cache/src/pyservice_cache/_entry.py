"""What a cache entry holds: an answer or a whitelisted exception, as JSON bytes.

Entries are JSON, never pickle: whoever can write to a shared cache must not
be able to run code in the processes that read it. A tag byte tells the two
kinds apart. An answer's entry is the tag and the answer's encoding exactly as
the service sends it (orjson, compact), so a service hit sends those bytes
without decoding them, and a miss stores the bytes the core already encoded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson
from pyservice.exceptions import exception_class

from ._json import dumps

__all__ = ["decode", "decode_body", "encode_answer", "encode_body", "encode_error"]

_ANSWER = b"A"
_ERROR = b"E"
_ANSWER_TAG = _ANSWER[0]
_OBJECT_START = _ANSWER + b"{"
_OBJECT_END = b"}"
_ERROR_TAG = _ERROR[0]


def encode_answer(response: Mapping[str, Any]) -> bytes | None:
    """The entry of a successful answer, or ``None`` when it is not JSON."""
    try:
        return _ANSWER + dumps(response)
    except TypeError:
        return None


def encode_body(body: bytes) -> bytes:
    """The entry of a successful answer the core has already encoded."""
    return _ANSWER + body


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


def decode_body(entry: bytes, allowed_errors: Collection[str]) -> bytes | BaseException | None:
    """Read an entry back as a service sends it: the encoded answer, not decoded.

    An answer's bytes are checked only for the shape of a JSON object (they
    start with ``{`` and end with ``}``): decoding them to check more would
    cost what serving them undecoded saves. Whoever can write to the store
    can make the service answer what they wrote anyway (see the README's
    threat model); they cannot make it run code or raise what the operation
    does not replay.

    Returns:
        The answer's encoded bytes, the exception to raise, or ``None`` for
        an entry that is not one this format writes (treated as a miss).
    """
    if entry[:2] == _OBJECT_START and entry[-1:] == _OBJECT_END:
        return entry[1:]
    if entry[:1] == _ERROR:
        error = decode(entry, allowed_errors)
        return error if isinstance(error, BaseException) else None
    return None
