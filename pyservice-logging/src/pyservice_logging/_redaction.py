"""Masking secrets in event dicts: by key name, glob pattern and card-number-like value."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["DEFAULT_PATTERNS", "MASK", "MAX_DEPTH", "TRUNCATED", "Redactor", "normalize_key"]

#: What replaces a secret.
MASK = "[REDACTED]"

#: The deepest nesting walked: a container below it is replaced by :data:`TRUNCATED`.
#: Well under Python's recursion limit and orjson's (254), so a body nested as
#: deep as any JSON parser accepts is logged, truncated, and never fails the call.
MAX_DEPTH = 64

#: What replaces a container nested deeper than :data:`MAX_DEPTH`.
TRUNCATED = f"[TRUNCATED: nested deeper than {MAX_DEPTH} levels]"

#: Key names and glob patterns masked whatever the configuration says. They
#: cover the Authorization, Cookie, API-key and signature headers and the
#: field names secrets usually travel under. Matched after normalisation.
DEFAULT_PATTERNS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "*api_key",
    "*apikey*",
    "*password*",
    "*passwd*",
    "*passphrase*",
    "*secret*",
    "*token",
    "*signature*",
    "*private_key",
    "*credentials",
    "*session_id",
)

_SEPARATORS = re.compile(r"[-_\s.]")
# Runs of digits, optionally split by single spaces or dashes as cards are printed.
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,}")
_NOT_DIGIT = re.compile(r"\D")
_CARD_MIN, _CARD_MAX = 13, 19
# The smallest integer with _CARD_MIN digits: smaller ones cannot be card numbers.
_CARD_INT = 10 ** (_CARD_MIN - 1)
_CARD_FLOAT = float(_CARD_INT)
# Values that can hold no secret: neither walked nor matched.
_ATOMS = frozenset({bool, type(None)})
# The digit-run regex costs microseconds on a 32-character hex id, so an ASCII
# string is first mapped byte by byte (digits, spaces and dashes to "1", the
# rest to "0") and searched for 13 "1"s in a row: every string the regex can
# match passes (a superset), and ids and timestamps do not. Other strings may
# hold non-ASCII digits, which the regex's \d matches: they go to it directly.
_CARD_BYTES = bytes(49 if chr(byte) in "0123456789 -" else 48 for byte in range(256))
_CARD_RUN = b"1" * _CARD_MIN


def _may_hold_card(text: str) -> bool:
    """Whether ``text`` is long enough and, if ASCII, has a long enough run of digits, spaces and dashes."""
    if len(text) < _CARD_MIN:
        return False
    return not text.isascii() or _CARD_RUN in text.encode().translate(_CARD_BYTES)


# Key decisions are cached; keys come from payloads, so the cache is bounded.
_CACHE_LIMIT = 4096


def normalize_key(key: str) -> str:
    """Fold a key name so that ``API_Key``, ``api-key`` and ``apiKey`` compare equal."""
    return _SEPARATORS.sub("", key).lower()


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_cards(match: re.Match[str]) -> str:
    text = match.group()
    digits = _NOT_DIGIT.sub("", text)
    # Longer runs may hide a card number between other digits: mask them whole.
    if len(digits) > _CARD_MAX or _luhn(digits):
        return MASK
    return text


class Redactor:
    """A structlog processor that masks secrets, recursively.

    Put it just before the renderer. Keys are matched after folding case and
    removing ``-``, ``_``, ``.`` and spaces, so one pattern covers every
    spelling; patterns may use ``*``, ``?`` and ``[...]`` globs. A matching
    key's whole value is masked, whatever its type. Card-number-like values
    (13 to 19 digits passing the Luhn check, spaces and dashes allowed) are
    masked wherever they appear: as strings, inside strings, as integers,
    as floats whose text holds one (``4111111111111111.0``), and in
    dict keys (a key holding one is replaced by its masked text; a key
    named like a secret masks its value). Dicts, lists and tuples are
    walked, :data:`MAX_DEPTH` levels deep: a container below that is
    replaced by :data:`TRUNCATED`, so the walk and the renderer stay
    bounded however deep the input. Other objects are left to the renderer.

    Args:
        patterns: key names or glob patterns to mask, added to
            :data:`DEFAULT_PATTERNS`.
        card_numbers: mask card-number-like values.
        mask: the replacement text.
        defaults: include :data:`DEFAULT_PATTERNS`.
    """

    __slots__ = ("_cache", "_card_numbers", "_event_keys", "_exact", "_glob", "_plain_keys", "mask")

    def __init__(
        self, patterns: Iterable[str] = (), *, card_numbers: bool = True, mask: str = MASK, defaults: bool = True
    ) -> None:
        # Compiled once: exact names (normalised) in a frozen set, globs in one regex.
        exact: set[str] = set()
        globs: list[str] = []
        for pattern in (*(DEFAULT_PATTERNS if defaults else ()), *patterns):
            folded = normalize_key(pattern)
            if any(char in folded for char in "*?["):
                globs.append(fnmatch.translate(folded))
            else:
                exact.add(folded)
        self._exact = frozenset(exact)
        self._glob = re.compile("|".join(globs)) if globs else None
        self._card_numbers = card_numbers
        self._cache: dict[str, bool | str] = {}
        # The processor's own decisions by top-level key: exc_info is never masked there.
        self._event_keys: dict[Any, bool | str] = {}
        # Top-level keys known to need no masking, for plain_json's set comparison.
        self._plain_keys: set[str] = set()
        self.mask = mask

    def is_secret(self, key: object) -> bool:
        """Tell whether values under ``key`` are masked."""
        if not isinstance(key, str):
            return False
        found = self._cache.get(key)
        if found is None:
            found = self._decide(key)
        return found is True

    def _decide(self, key: str) -> bool | str:
        """What to do with ``key``: ``True`` masks its value, a string replaces the key, ``False`` keeps both.

        Remembered: keys come again and again, so a key seen before costs a lookup.
        """
        cache = self._cache
        folded = normalize_key(key)
        found: bool | str = folded in self._exact or (self._glob is not None and self._glob.match(folded) is not None)
        if not found and self._card_numbers and _may_hold_card(key):
            masked = _DIGIT_RUN.sub(self._mask_run, key)
            if masked != key:
                found = masked
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = found
        return found

    def _other_key(self, key: Any) -> bool | str:
        """The decision for a key that is not a string: an integer or float holding a card number is masked."""
        kind = type(key)
        if kind is int:
            return self.mask if self._redact_int(key) is self.mask else False
        if kind is float:
            return self.mask if self._redact_float(key) is self.mask else False
        return False

    def redact(self, value: Any, depth: int = 0) -> Any:
        """``value`` with its secrets masked; containers are copied, never changed in place.

        Args:
            value: what to redact.
            depth: how deeply ``value`` is nested already; containers more
                than :data:`MAX_DEPTH` levels down are replaced by
                :data:`TRUNCATED`.
        """
        kind = type(value)
        if kind is str:
            if self._card_numbers and _may_hold_card(value):
                return _DIGIT_RUN.sub(self._mask_run, value)
            return value
        if kind in _ATOMS:
            return value
        # Numbers before the container checks: isinstance() against an ABC costs more than they do.
        if kind is int:
            return self._redact_int(value)
        if kind is float:
            if value >= _CARD_FLOAT or value <= -_CARD_FLOAT:
                return self._redact_float(value)
            return value
        if kind is dict or isinstance(value, Mapping):  # Containers are Mappings, not dicts
            if depth >= MAX_DEPTH:
                return TRUNCATED
            depth += 1
            cache = self._cache
            mask = self.mask
            walk = self.redact
            redacted: dict[Any, Any] = {}
            for key, item in value.items():
                found = cache.get(key) if type(key) is str else self._other_key(key)
                if found is None:
                    found = self._decide(key)
                if found is False:
                    redacted[key] = item if type(item) in _ATOMS else walk(item, depth)
                elif found is True:
                    redacted[key] = mask
                else:
                    # The key itself held a card number: its masked text, kept apart from a key already there.
                    redacted[_free_key(redacted, found)] = item if type(item) in _ATOMS else walk(item, depth)
            return redacted
        if kind is list or kind is tuple or isinstance(value, (list, tuple)):
            if depth >= MAX_DEPTH:
                return TRUNCATED
            depth += 1
            walk = self.redact
            return [item if type(item) in _ATOMS else walk(item, depth) for item in value]
        if isinstance(value, str):
            return self.redact(str(value), depth)
        return value

    def _redact_int(self, value: int) -> Any:
        if self._card_numbers and (value >= _CARD_INT or value <= -_CARD_INT):
            digits = str(abs(value))
            if len(digits) > _CARD_MAX or _luhn(digits):
                return self.mask
        return value

    def _redact_float(self, value: float) -> Any:
        # A card number sent as a JSON number with a fraction or an exponent
        # (4111111111111111.0) is a float: its shortest text (what the renderer
        # writes, and what plain_json's digit-run check reads) is looked at as
        # a string is, and a match masks the whole number.
        if self._card_numbers and (value >= _CARD_FLOAT or value <= -_CARD_FLOAT):
            text = repr(value)
            if _DIGIT_RUN.sub(_mask_cards, text) != text:
                return self.mask
        return value

    def plain_json(self, event_dict: Mapping[str, Any], line: bytes) -> bool:
        """Tell whether redacting ``event_dict`` would change nothing, from its JSON rendering.

        ``line`` must be ``event_dict`` rendered by orjson *without* a
        ``default`` (an object orjson cannot render itself, such as a
        non-dict mapping, must send the event to :meth:`__call__` instead).
        It is plain when every top-level key is known to need nothing (not
        secret, no card number), it
        holds no nested object or array, it is ASCII (the digit-run regex
        also matches non-ASCII digits) and no 13 digits, spaces or dashes
        follow one another: then no value is a container to walk, and no
        string or integer can hold a card number. A few C-level passes over
        the line replace a Python-level look at each value; anything
        doubtful is left to :meth:`__call__`, so the answer is the same.
        """
        if not event_dict.keys() <= self._plain_keys and not self._learn(event_dict):
            return False
        if not line.isascii() or line.count(b"{") != 1 or b"[" in line:
            return False
        return not self._card_numbers or _CARD_RUN not in line.translate(_CARD_BYTES)

    def _learn(self, event_dict: Mapping[str, Any]) -> bool:
        plain = self._plain_keys
        if len(plain) >= _CACHE_LIMIT:
            # Keys may come from payloads: the set stays bounded (replaced, never cleared under a reader).
            plain = self._plain_keys = set()
        found = True
        for key in event_dict:
            # The renderer needs exc_info itself: an event with it always takes the full path.
            if key == "exc_info" or type(key) is not str or self._decide(key) is not False:
                found = False
            else:
                plain.add(key)
        return found

    def _mask_run(self, match: re.Match[str]) -> str:
        replaced = _mask_cards(match)
        return self.mask if replaced == MASK else replaced

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Mask the secrets of one event dict (the structlog processor protocol).

        Each value is looked at once: a secret key's value is masked without
        being read; ``None`` and booleans are left alone; a string is
        searched for card numbers only when it is long enough to hold one, a
        number only when it has enough digits; containers are walked
        (copied). Key decisions are remembered, so a key seen before costs
        one dict lookup. A key holding a card number is replaced by its
        masked text (the event is then a new dict, in the same order).
        """
        keys = self._event_keys
        mask = self.mask
        cards = self._card_numbers
        renamed: list[tuple[Any, Any]] | None = None
        for key, value in event_dict.items():
            found = keys.get(key)
            if found is None:
                # The renderer needs exc_info itself; formatted tracebacks are strings, redacted below.
                if key == "exc_info":
                    found = False
                elif type(key) is str:
                    found = self._decide(key)
                else:
                    found = self._other_key(key)
                if len(keys) >= _CACHE_LIMIT:
                    keys.clear()
                keys[key] = found
            if found is True:
                event_dict[key] = mask
                continue
            if found is not False:
                renamed = renamed or []
                renamed.append((key, found))
            kind = type(value)
            if kind is str:
                if cards and len(value) >= _CARD_MIN and _may_hold_card(value):
                    event_dict[key] = _DIGIT_RUN.sub(self._mask_run, value)
            elif kind is int:
                if cards and (value >= _CARD_INT or value <= -_CARD_INT):
                    event_dict[key] = self._redact_int(value)
            elif kind is float:
                if cards and (value >= _CARD_FLOAT or value <= -_CARD_FLOAT):
                    event_dict[key] = self._redact_float(value)
            elif kind not in _ATOMS and key != "exc_info":
                event_dict[key] = self.redact(value)
        if renamed is None:
            return event_dict
        new_keys = dict(renamed)
        result: dict[Any, Any] = {}
        for key, value in event_dict.items():
            result[_free_key(result, new_keys[key]) if key in new_keys else key] = value
        return result


def _free_key(taken: Mapping[Any, Any], key: Any) -> Any:
    """``key``, or ``key`` with ``#2``, ``#3``... when ``taken`` holds it: masked keys never overwrite each other."""
    if key not in taken:
        return key
    number = 2
    while f"{key}#{number}" in taken:
        number += 1
    return f"{key}#{number}"
