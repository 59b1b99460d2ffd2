"""Cache keys: a versioned prefix and a strong hash of a canonical encoding."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ._json import dumps, sorted_dumps

__all__ = ["KEY_FORMAT_VERSION", "KeyMaker", "scope_prefix"]

#: Bumped whenever the encoding below changes, so a deploy never reads keys
#: (or entries) written by an older format: they simply stop matching.
KEY_FORMAT_VERSION = 1


def scope_prefix(prefix: str, side: str, api_name: str) -> str:
    """The prefix every key of one side of one api starts with."""
    return f"{prefix}:{KEY_FORMAT_VERSION}:{side}:{api_name}:"


class KeyMaker:
    """Builds the keys of one operation.

    A key is ``<prefix>:<format>:<side>:<api>:<operation>:<sha256>``: the
    clear part lets a backend delete one operation's keys by prefix; the
    hash covers the same fields again, plus the api version, the request
    and the caller, in a canonical JSON encoding (keys sorted at every
    depth), so field order never makes two keys differ, and the caller's
    identity never appears in clear.
    """

    __slots__ = ("_copy", "_head", "operation_prefix")

    def __init__(self, prefix: str, side: str, api_name: str, version: str, operation: str) -> None:
        self.operation_prefix = f"{scope_prefix(prefix, side, api_name)}{operation}:"
        # The fixed fields are hashed once; each call copies the running hash.
        self._head = hashlib.sha256(dumps([KEY_FORMAT_VERSION, side, api_name, operation, version]))
        self._copy = self._head.copy

    def key(self, request: Any, caller: Any) -> str:
        """The key of one call.

        Raises:
            TypeError: the request or caller cannot be encoded as JSON.
        """
        digest = self._head.copy()
        digest.update(sorted_dumps([request, caller]))
        return self.operation_prefix + digest.hexdigest()

    def body_key(self, body: bytes, caller: Any) -> str | None:
        """The key of one call from its raw request body, before the core decodes it.

        The same key as :meth:`key` of the decoded request: the body is
        decoded and encoded again in the canonical form, so two encodings of
        one request (field order, whitespace) share an entry, and
        invalidation by request fields finds it.

        Returns:
            The key, or ``None`` when the body is not a JSON object (the
            call itself will say why) or the caller is not JSON.
        """
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(request) is not dict:
            return None
        try:
            canonical = orjson.dumps([request, caller], option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        digest = self._copy()
        digest.update(canonical)
        return self.operation_prefix + digest.hexdigest()
