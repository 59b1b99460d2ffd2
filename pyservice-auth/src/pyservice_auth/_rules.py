"""Authorization: which principals or roles may call an operation, deny by default."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._principal import Principal

__all__ = ["AllowRule", "parse_allow"]

_ANONYMOUS = "anonymous"
_AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class AllowRule:
    """An operation's ``allow`` list, compiled.

    Attributes:
        anonymous: anyone may call, authenticated or not.
        authenticated: any authenticated principal may call.
        principals: the principal ids that may call.
        roles: the roles whose holders may call.
    """

    anonymous: bool = False
    authenticated: bool = False
    principals: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def permits(self, principal: Principal | None) -> bool:
        """Whether ``principal`` (``None``: not authenticated) may call; nothing listed permits no one."""
        if self.anonymous:
            return True
        if principal is None:
            return False
        if self.authenticated or principal.id in self.principals:
            return True
        return not self.roles.isdisjoint(principal.roles)


def parse_allow(entries: Iterable[object]) -> AllowRule:
    """Compile an ``allow`` list.

    Entries: ``"anonymous"``, ``"authenticated"``, ``"principal:<id>"``,
    ``"role:<name>"``.

    Raises:
        ValueError: naming the first entry of another form.
    """
    anonymous = authenticated = False
    principals: set[str] = set()
    roles: set[str] = set()
    for entry in entries:
        if entry == _ANONYMOUS:
            anonymous = True
        elif entry == _AUTHENTICATED:
            authenticated = True
        elif isinstance(entry, str) and entry.startswith("principal:") and len(entry) > len("principal:"):
            principals.add(entry[len("principal:") :])
        elif isinstance(entry, str) and entry.startswith("role:") and len(entry) > len("role:"):
            roles.add(entry[len("role:") :])
        else:
            raise ValueError(
                f"expected entries 'anonymous', 'authenticated', 'principal:<id>' or 'role:<name>', got {entry!r}"
            )
    return AllowRule(anonymous, authenticated, frozenset(principals), frozenset(roles))
