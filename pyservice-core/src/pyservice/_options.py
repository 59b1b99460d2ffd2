"""Declared configuration keys: what the core and each plugin accept."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError

__all__ = ["REQUIRED", "Option", "check_options", "describe"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an ``Option`` that must be given.
REQUIRED: Any = _Required()

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    Mapping: "a mapping",
    type(None): "null",
    type: "a class",
}


def describe(value: object) -> str:
    """Show a value in an error message: its repr, shortened, and its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


@dataclass(frozen=True)
class Option:
    """One configuration key that a plugin (or the core) accepts.

    Args:
        type: the accepted type, or a tuple of them. ``float`` accepts
            integers too; ``int`` and ``float`` never accept booleans.
        default: the value used when the key is missing; ``REQUIRED``
            makes the key mandatory.
        doc: one sentence for the documentation and ``pyservice chain``.
        secret: mask the value wherever configuration is shown.
        check: called with the value after the type check; returns the value
            to keep (possibly converted) or raises ``ValueError`` saying what
            was expected.
        side: ``"service"`` or ``"client"`` for an option only that side
            reads (a client's secret); ``None``, the default, for both. The
            other side accepts the key, checks its value and leaves it out
            of its config, and never requires it.
    """

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""
    secret: bool = False
    check: Callable[[Any], Any] | None = None
    side: str | None = None

    def __post_init__(self) -> None:
        if self.side not in (None, "service", "client"):
            raise ValueError(f"Option side must be 'service', 'client' or None, got {self.side!r}")

    def check_default(self, key: str, where: str) -> None:
        """Check that the default fits the option's own type and check.

        ``REQUIRED`` and ``None`` (not set) are always accepted.

        Args:
            key: the dotted path the error names.
            where: the declaration, for the message (``Cache.options['ttl']``).

        Raises:
            ApiError: the default does not fit.
        """
        if self.default is REQUIRED or self.default is None:
            return
        try:
            self.validate(key, self.default)
        except ApiError as exc:
            raise ApiError(key, f"the default of {where} does not fit its declaration: {exc.problem}") from None

    def default_value(self) -> Any:
        """The default, converted by ``check`` like a given value; mutable defaults are copied."""
        value = copy.deepcopy(self.default)
        if value is not None and self.check is not None:
            value = self.check(value)
        return value

    def validate(self, key: str, value: Any) -> Any:
        """Return ``value`` checked and converted, or raise ``ApiError`` naming ``key``."""
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        # A secret's value never appears in an error message, only its type.
        shown = f"*** ({type(value).__name__})" if self.secret else describe(value)
        if not _is_instance(value, types):
            expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise ApiError(key, f"expected {expected}, got {shown}")
        if self.check is not None:
            try:
                value = self.check(value)
            except (ValueError, TypeError) as exc:
                message = str(exc)
                if self.secret and isinstance(value, str) and value and value in message:
                    message = message.replace(value, "***")
                raise ApiError(key, f"{message}, got {shown}") from None
        return value


def _is_instance(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def check_options(
    key: str,
    declared: Mapping[str, Option],
    given: Mapping[str, Any],
    *,
    defaults: bool = True,
    side: str | None = None,
) -> dict[str, Any]:
    """Validate ``given`` against ``declared``, filling defaults.

    Args:
        key: the dotted path of ``given`` in the api description, for errors.
        declared: the accepted keys.
        given: the configuration as written.
        defaults: fill missing keys with their defaults (and require the
            required ones); ``False`` validates only what is given, for
            per-operation overrides.
        side: the side reading the result: an option declared for the other
            side is validated where given, then left out, and never
            required. ``None`` keeps every option.

    Returns:
        A new dict with the validated values, in declaration order.

    Raises:
        ApiError: an unknown key, a missing required key or a bad value.
    """
    unknown = [name for name in given if name not in declared]
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise ApiError(f"{key}.{unknown[0]}" if key else str(unknown[0]), f"unknown key (accepted: {accepted})")
    result: dict[str, Any] = {}
    for name, option in declared.items():
        path = f"{key}.{name}" if key else name
        other_side = side is not None and option.side is not None and option.side != side
        if name in given:
            value = option.validate(path, given[name])
            if not other_side:
                result[name] = value
        elif defaults and not other_side:
            if option.default is REQUIRED:
                raise ApiError(path, "is required")
            result[name] = option.default_value()
    return result
