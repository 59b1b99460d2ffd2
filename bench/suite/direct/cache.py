"""The cache plugin's hit done directly with its libraries, the fast way.

What one call of :meth:`DirectCache.hit` does, and nothing else:

1. decodes the request body with ``orjson.loads`` and encodes it again with
   ``orjson.OPT_SORT_KEYS`` beside the caller (``None`` when the answer is
   the same for everyone): the canonical form, in which field order and
   whitespace never make two keys of one request differ;
2. hashes it with SHA-256, continuing a ``hashlib`` object that already
   holds the fixed fields (a format version, the api, the operation): the
   ``copy()`` the ``hashlib`` docs describe for inputs sharing a prefix;
3. looks the hex digest up in a ``cachetools.TTLCache`` behind a
   ``threading.Lock`` (cachetools' caches are not thread-safe; its docs say to
   guard them with a lock);
4. answers the stored bytes: the encoded answer, sent as it is, never
   decoded and encoded again.

The plugin does the same in its request hook, and also counts the hit,
annotates the call (``cache: hit``), checks the stored entry's tag, and can
replay a cached exception; this is the floor the issue measures it against.

Use::

    cache = build()
    cache.store(REQUEST_BODY, ANSWER)
    cache.hit(REQUEST_BODY)   # ANSWER; None when there is no entry
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import orjson
from cachetools import TTLCache

__all__ = ["DirectCache", "build"]


class DirectCache:
    """Encoded answers by canonical request, in a TTL cache.

    Args:
        ttl: seconds an answer is kept.
        maxsize: the most answers kept.
        prefix: the fixed fields every key covers (api and operation).
    """

    __slots__ = ("_copy", "_entries", "_lock")

    def __init__(self, ttl: float = 3600.0, maxsize: int = 10_000, prefix: bytes = b"bench:echo") -> None:
        self._entries: TTLCache[str, bytes] = TTLCache(maxsize, ttl)
        self._lock = threading.Lock()
        self._copy = hashlib.sha256(prefix).copy

    def key(self, body: bytes, caller: Any = None) -> str:
        """The key of a request body (and caller): SHA-256 of its canonical encoding, in hex."""
        digest = self._copy()
        digest.update(orjson.dumps([orjson.loads(body), caller], option=orjson.OPT_SORT_KEYS))
        return digest.hexdigest()

    def store(self, body: bytes, answer: bytes, caller: Any = None) -> None:
        """Keep ``answer`` (the encoded response) as the answer to ``body``."""
        key = self.key(body, caller)
        with self._lock:
            self._entries[key] = answer

    def hit(self, body: bytes, caller: Any = None) -> bytes | None:
        """The stored encoded answer to ``body``, or ``None`` (a miss)."""
        digest = self._copy()
        digest.update(orjson.dumps([orjson.loads(body), caller], option=orjson.OPT_SORT_KEYS))
        key = digest.hexdigest()
        with self._lock:
            return self._entries.get(key)


def build(ttl: float = 3600.0, maxsize: int = 10_000) -> DirectCache:
    """A :class:`DirectCache` with the plugin's default bounds."""
    return DirectCache(ttl, maxsize)
