"""The authenticated principal, as handlers and other plugins see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pyservice

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    """Who made the call, once authenticated; ``context.principal``.

    Attributes:
        id: the principal's id; also ``context.caller`` (a display name).
        roles: the roles the authorization rules match ``role:<name>`` against.
        scheme: how it was authenticated: ``"api_key"``, ``"signed"`` or ``"jwt"``.
        key_id: the API key prefix, signing key id or JWT ``kid`` used.
        claims: a JWT's verified claims; empty for the other schemes.
    """

    id: str
    roles: frozenset[str] = frozenset()
    scheme: str = ""
    key_id: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def caller(self) -> pyservice.Caller:
        """The principal as ``context.caller_identity``: ``<scheme>:<id>``, made once per principal.

        A principal without a scheme (made by hand) is in the ``principal`` scheme.
        """
        return pyservice.Caller.principal(self.scheme or "principal", self.id)

    def has_role(self, role: str) -> bool:
        """Whether the principal has ``role``."""
        return role in self.roles
