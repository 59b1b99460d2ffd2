"""Masking secrets in event dicts: by key name, glob pattern and card-number-like value."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["DEFAULT_PATTERNS", "MASK", "Redactor", "normalize_key"]

#: What replaces a secret.
MASK = "[REDACTED]"

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
    masked wherever they appear, as strings, inside strings, or as integers.
    Dicts, lists and tuples are walked; other objects are left to the
    renderer.

    Args:
        patterns: key names or glob patterns to mask, added to
            :data:`DEFAULT_PATTERNS`.
        card_numbers: mask card-number-like values.
        mask: the replacement text.
        defaults: include :data:`DEFAULT_PATTERNS`.
    """

    __slots__ = ("_cache", "_card_numbers", "_exact", "_glob", "mask")

    def __init__(
        self, patterns: Iterable[str] = (), *, card_numbers: bool = True, mask: str = MASK, defaults: bool = True
    ) -> None:
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
        self._cache: dict[str, bool] = {}
        self.mask = mask

    def is_secret(self, key: object) -> bool:
        """Tell whether values under ``key`` are masked."""
        if not isinstance(key, str):
            return False
        cache = self._cache
        found = cache.get(key)
        if found is None:
            folded = normalize_key(key)
            found = folded in self._exact or (self._glob is not None and self._glob.match(folded) is not None)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = found
        return found

    def redact(self, value: Any) -> Any:
        """``value`` with its secrets masked; containers are copied, never changed in place."""
        kind = type(value)
        if kind is str:
            if self._card_numbers and len(value) >= _CARD_MIN:
                return _DIGIT_RUN.sub(self._mask_run, value)
            return value
        if kind is dict or isinstance(value, Mapping):  # Containers are Mappings, not dicts
            is_secret = self.is_secret
            mask = self.mask
            redact = self.redact
            return {key: mask if is_secret(key) else redact(item) for key, item in value.items()}
        if kind is list or kind is tuple or isinstance(value, (list, tuple)):
            return [self.redact(item) for item in value]
        if kind is int:
            if self._card_numbers and abs(value) >= 10 ** (_CARD_MIN - 1):
                digits = str(abs(value))
                if len(digits) > _CARD_MAX or _luhn(digits):
                    return self.mask
            return value
        if isinstance(value, str):
            return self.redact(str(value))
        return value

    def _mask_run(self, match: re.Match[str]) -> str:
        replaced = _mask_cards(match)
        return self.mask if replaced == MASK else replaced

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Mask the secrets of one event dict (the structlog processor protocol)."""
        is_secret = self.is_secret
        redact = self.redact
        mask = self.mask
        for key, value in event_dict.items():
            if key == "exc_info":
                # The renderer needs the exception itself; formatted tracebacks are strings, redacted below.
                continue
            if is_secret(key):
                event_dict[key] = mask
            elif type(value) is not float and value is not None and type(value) is not bool:
                event_dict[key] = redact(value)
        return event_dict
