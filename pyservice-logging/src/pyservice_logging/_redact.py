"""The ``redact`` plugin: what the logging plugin masks, and fields removed from responses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pyservice import Option, Plugin

from ._redaction import MASK, Redactor

if TYPE_CHECKING:
    from pyservice import Client, Container, Service, ServiceContext

__all__ = ["RedactPlugin"]


def _names(value: list[Any]) -> list[str]:
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValueError(f"expected a list of non-empty field names or glob patterns, found {name!r}")
    return list(value)


def _mask(value: str) -> str:
    if not value or any(char.isdigit() for char in value):
        raise ValueError("expected a non-empty mask without digits (digits could look like a secret)")
    return value


_REMOVE = Option(list, [], "Field names or patterns removed from responses, at any depth.", check=_names)


class RedactPlugin(Plugin):
    """Keeps secrets out of logs and, where the api says so, out of responses.

    Its ``fields`` (names or glob patterns, matched regardless of case and
    of ``_``/``-``/camelCase spelling) are masked in everything the
    ``logging`` plugin emits, whatever order the two are enabled in; the
    Authorization, Cookie, API-key and signature headers and usual secret
    names are masked even without it. ``remove``, set for the whole api or
    per operation, deletes matching fields from a service's responses at
    any depth before they are encoded.
    """

    name = "redact"
    options: ClassVar[Mapping[str, Option]] = {
        "fields": Option(list, [], "Extra field names or glob patterns masked in logs.", check=_names),
        "card_numbers": Option(bool, True, "Mask card-number-like values (Luhn-valid, 13-19 digits)."),
        "mask": Option(str, MASK, "The text that replaces a masked value.", check=_mask),
        "remove": _REMOVE,
    }
    operation_options: ClassVar[Mapping[str, Option]] = {"remove": _REMOVE}

    def setup(self, owner: Service | Client) -> None:
        """Register the response filter on each operation whose ``remove`` is not empty."""
        if owner.side != "service":
            # Masking is the logging plugin's job; a client has no response to guard.
            return
        for op in owner.api.operations.values():
            config = self.operation_config(op)
            if config is None or not config["remove"]:
                continue
            # No default patterns here: removing "token" from every answer would
            # break apis whose very purpose is to hand out tokens.
            matcher = Redactor(config["remove"], card_numbers=False, defaults=False)
            owner.plugin("operation", operations=[op.name], name=self.name)(_remove_hook(matcher))


def _remove_hook(matcher: Redactor) -> Callable[..., None]:
    is_secret = matcher.is_secret

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):  # Containers are Mappings, not dicts
            return {key: strip(item) for key, item in value.items() if not is_secret(key)}
        if isinstance(value, (list, tuple)):
            return [strip(item) for item in value]
        return value

    def redact_response(request: Container, response: Container, context: ServiceContext) -> None:
        context.process_request()
        # The top level is this call's own; nested values may be the
        # application's objects, so they are copied, never changed in place.
        for key in list(response):
            if is_secret(key):
                del response[key]
            else:
                response[key] = strip(response[key])

    return redact_response


def redact_config(api_plugins: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """The redact plugin's checked config from an api's plugins, or an empty mapping."""
    return api_plugins.get(RedactPlugin.name) or {}
