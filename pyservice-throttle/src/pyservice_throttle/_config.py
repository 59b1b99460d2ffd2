"""Checks of the plugin's config values, run once at start-up."""

from __future__ import annotations

from pyservice.checks import import_object

from ._backend import Backend
from ._rate import Rate, parse_rate

__all__ = [
    "FORWARDING_HEADERS",
    "check_backend",
    "check_burst",
    "check_fraction",
    "check_key",
    "check_non_negative",
    "check_on_error",
    "check_positive",
    "check_positive_int",
    "check_rate",
]

#: Headers anyone can write: keying on them would let a caller pick its own budget.
FORWARDING_HEADERS = frozenset({"x-forwarded-for", "forwarded", "x-real-ip", "x-client-ip", "true-client-ip"})


def check_rate(value: str | Rate | None) -> Rate | None:
    if value is None or isinstance(value, Rate):
        return value
    return parse_rate(value)


def check_positive(value: float) -> float:
    if value <= 0:
        raise ValueError("expected a number greater than 0")
    return value


def check_non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("expected a number of at least 0")
    return value


def check_positive_int(value: int) -> int:
    if value < 1:
        raise ValueError("expected an integer of at least 1")
    return value


def check_burst(value: int | None) -> int | None:
    return None if value is None else check_positive_int(value)


def check_fraction(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("expected a number from 0 to 1")
    return value


def check_on_error(value: str) -> str:
    if value not in ("open", "closed"):
        raise ValueError("expected 'open' (allow calls) or 'closed' (refuse them with ThrottleUnavailable)")
    return value


def check_key(value: str) -> str:
    kind, sep, name = value.partition(":")
    if value == "caller":
        return value
    if not sep or kind not in ("header", "field") or not name.strip():
        raise ValueError("expected 'caller', 'header:<Name>' or 'field:<name>'")
    if kind == "header" and name.strip().lower() in FORWARDING_HEADERS:
        raise ValueError(
            "expected a header the caller cannot forge; forwarding headers are resolved by the auth"
            " plugin's trusted proxies into the caller identity, so use 'caller'"
        )
    return f"{kind}:{name.strip()}"


def check_backend(value: object) -> object:
    if isinstance(value, Backend) or value in ("memory", "redis"):
        return value
    if isinstance(value, str):
        found = import_object(value)
        if isinstance(found, Backend) or callable(found):
            return found
        raise ValueError(f"expected 'module:attribute' naming a Backend or a factory of one, found {found!r}")
    raise ValueError("expected 'memory', 'redis', a Backend instance or 'module:attribute' naming one")
