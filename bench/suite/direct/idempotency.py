"""The idempotency plugin's work done directly with orjson, hashlib and a dict, the fast way.

What one call of :meth:`DirectIdempotency.first` does (a call with a new
key, the common case), and nothing else:

1. checks the key's length and that it is visible ASCII;
2. the request's fingerprint: ``orjson.loads`` of the body, ``orjson.dumps``
   with ``OPT_SORT_KEYS`` (the canonical form, in which field order and
   spacing never make two requests differ), BLAKE2b-128 of it in hex;
3. the store key: a fixed prefix and BLAKE2b-160 of ``caller NUL key``;
4. the claim: a JSON record (``orjson.dumps``) with a random token
   (``secrets.token_hex``), stored under a ``threading.Lock`` in an
   ``OrderedDict`` with its expiry, if the key is free (the oldest record
   dropped beyond ``maxsize``);
5. after the work: the completed record (a JSON header line, then the answer's
   bytes) replacing the claim, under the lock, if the claim is still there.

:meth:`DirectIdempotency.replay` is a duplicate: steps 1 to 3, the lookup,
reading the record's header line and comparing the fingerprint with
``hmac.compare_digest``, and the answer's bytes split off.

The plugin's memory backend does the same through its request hook, its
:class:`~pyservice_idempotency.Backend` interface, its failure policy and
annotations; this is the floor the bench measures it against. The keys of
:meth:`first` are made from a counter (``key-0``, ``key-1``, ...): the
client makes them in the plugin's case, before the clock starts.

Use::

    direct = build()
    direct.first(REQUEST_BODY, ANSWER)     # True: claimed and completed
    direct.replay("key-0", REQUEST_BODY)   # ANSWER
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import threading
import time
from collections import OrderedDict

import orjson

__all__ = ["DirectIdempotency", "build"]


class DirectIdempotency:
    """Answers by caller and key, claimed while the work runs.

    Args:
        ttl: seconds a completed answer is kept.
        running_ttl: seconds a claim is kept.
        maxsize: the most records kept.
        caller: the caller every call is keyed for.
    """

    __slots__ = ("_keys", "_lock", "_records", "caller", "maxsize", "running_ttl", "ttl")

    def __init__(
        self, ttl: float = 86_400.0, running_ttl: float = 60.0, maxsize: int = 100_000, caller: str = "127.0.0.1"
    ) -> None:
        self.ttl = ttl
        self.running_ttl = running_ttl
        self.maxsize = maxsize
        self.caller = caller
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._keys = itertools.count()

    def _store_key(self, key: str) -> str:
        return "bench:echo:" + hashlib.blake2b(f"{self.caller}\0{key}".encode(), digest_size=20).hexdigest()

    @staticmethod
    def _fingerprint(body: bytes) -> str:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(canonical, digest_size=16).hexdigest()

    def first(self, body: bytes, answer: bytes) -> bool:
        """A call with a new key: claim it, and store ``answer`` as its answer."""
        key = f"key-{next(self._keys)}"
        if not 0 < len(key) <= 255 or not key.isascii() or not key.isprintable():
            raise ValueError("bad key")
        fingerprint = self._fingerprint(body)
        store_key = self._store_key(key)
        claim = orjson.dumps({"v": 1, "state": "running", "fp": fingerprint, "token": secrets.token_hex(8)})
        records = self._records
        now = time.monotonic()
        with self._lock:
            found = records.get(store_key)
            if found is not None and found[0] > now:
                return False
            records[store_key] = (now + self.running_ttl, claim)
            if len(records) > self.maxsize:
                records.popitem(last=False)
        # ... the work runs here ...
        record = (
            orjson.dumps({"v": 1, "state": "done", "fp": fingerprint, "status": 200, "headers": []}) + b"\n" + answer
        )
        now = time.monotonic()
        with self._lock:
            found = records.get(store_key)
            if found is None or found[1] != claim:
                return False
            records[store_key] = (now + self.ttl, record)
        return True

    def replay(self, key: str, body: bytes) -> bytes | None:
        """A duplicate: the stored answer to ``key``, if ``body`` is the request it answered."""
        if not 0 < len(key) <= 255 or not key.isascii() or not key.isprintable():
            raise ValueError("bad key")
        fingerprint = self._fingerprint(body)
        store_key = self._store_key(key)
        now = time.monotonic()
        with self._lock:
            found = self._records.get(store_key)
        if found is None or found[0] <= now:
            return None
        meta, _, answer = found[1].partition(b"\n")
        header = orjson.loads(meta)
        if header["state"] != "done" or not hmac.compare_digest(header["fp"], fingerprint):
            return None
        return answer


def build(ttl: float = 86_400.0, maxsize: int = 100_000) -> DirectIdempotency:
    """A :class:`DirectIdempotency` with the plugin's default bounds."""
    return DirectIdempotency(ttl, maxsize=maxsize)
