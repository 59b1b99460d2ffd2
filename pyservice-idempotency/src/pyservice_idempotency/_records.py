"""What the store keeps per key: a JSON header line, then the answer's JSON bytes as they were sent.

A record is never unpickled: its first line is a JSON object (orjson never
writes a raw newline), and what follows it is the encoded answer exactly as
the service sent it, so a replay is the same bytes, not a re-encoding.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = [
    "DONE",
    "FORMAT",
    "RUNNING",
    "TOO_LARGE",
    "Record",
    "done_record",
    "fingerprint",
    "parse_key",
    "read_record",
    "running_record",
    "too_large_record",
]

#: The version of the record format; a record of another version is treated as absent.
FORMAT = 1
RUNNING = "running"
DONE = "done"
TOO_LARGE = "too_large"


class Record:
    """A record read back from the store."""

    __slots__ = ("body", "fingerprint", "headers", "state", "status")

    def __init__(self, state: str, fingerprint: str, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.state = state
        self.fingerprint = fingerprint
        self.status = status
        self.headers = headers
        self.body = body


def fingerprint(body: bytes) -> str | None:
    """The hash of the request's canonical form (keys sorted, no spacing), or ``None``.

    ``None`` when the body is not one JSON object: the core refuses such a
    request before anything runs, so there is nothing to protect.
    """
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(fields) is not dict:
        return None
    return hashlib.blake2b(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def parse_key(value: str, max_length: int) -> str | None:
    """The key an ``Idempotency-Key`` header carries, or ``None`` when it is not a valid one.

    The draft makes the header a structured-field string (``"abc"``); a bare
    token (``abc``) is accepted too, as most clients send one. Both name the
    same key. A key is 1 to ``max_length`` visible ASCII characters.
    """
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" in inner:
            # sf-string escapes: only \" and \\ exist.
            out = []
            chars = iter(inner)
            for char in chars:
                if char == "\\":
                    escaped = next(chars, "")
                    if escaped not in ('"', "\\"):
                        return None
                    char = escaped
                elif char == '"':
                    return None
                out.append(char)
            inner = "".join(out)
        elif '"' in inner:
            return None
        value = inner
    elif value[:1] == '"':
        return None  # a quoted string that does not end
    if not 0 < len(value) <= max_length or not value.isascii() or not value.isprintable():
        return None
    return value


def running_record(fingerprint: str, token: str) -> bytes:
    """The claim of a call that is running; ``token`` makes it this call's alone."""
    return orjson.dumps({"v": FORMAT, "state": RUNNING, "fp": fingerprint, "token": token})


def done_record(fingerprint: str, status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The record of a completed call: its status, the headers it added, and its encoded answer."""
    meta = orjson.dumps({"v": FORMAT, "state": DONE, "fp": fingerprint, "status": status, "headers": headers})
    return meta + b"\n" + body


def too_large_record(fingerprint: str, status: int) -> bytes:
    """The record of a completed call whose answer was over the size limit: it ran, its answer is gone."""
    return orjson.dumps({"v": FORMAT, "state": TOO_LARGE, "fp": fingerprint, "status": status})


def read_record(data: bytes) -> Record | None:
    """Read a stored record; ``None`` when it is not one this version wrote."""
    meta_bytes, _, body = data.partition(b"\n")
    try:
        meta: Any = orjson.loads(meta_bytes)
    except orjson.JSONDecodeError:
        return None
    if type(meta) is not dict or meta.get("v") != FORMAT:
        return None
    state = meta.get("state")
    stored_fp = meta.get("fp")
    if state not in (RUNNING, DONE, TOO_LARGE) or not isinstance(stored_fp, str):
        return None
    status = meta.get("status", 0)
    headers = meta.get("headers") or []
    if not isinstance(status, int) or not isinstance(headers, list):
        return None
    return Record(state, stored_fp, status, [(str(name), str(value)) for name, value in headers], body)
