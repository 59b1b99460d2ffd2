"""Authorization: which principals or roles may call an operation, deny by default."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._principal import Principal

__all__ = ["SCHEMES", "AllowRule", "parse_allow"]

_ANONYMOUS = "anonymous"
_AUTHENTICATED = "authenticated"
#: The schemes a rule may name: ``<scheme>:<id>`` admits that id proved by that scheme only.
SCHEMES = ("api_key", "signed", "jwt")
_FORMS = "'anonymous', 'authenticated', 'principal:<id>', 'api_key:<id>', 'signed:<id>', 'jwt:<id>' or 'role:<name>'"


@dataclass(frozen=True)
class AllowRule:
    """An operation's ``allow`` list, compiled.

    Attributes:
        anonymous: anyone may call, authenticated or not.
        authenticated: any authenticated principal may call.
        principals: the principal ids that may call, proved by any scheme
            (bare ``principal:<id>`` entries).
        callers: the ``<scheme>:<id>`` keys that may call: that id, proved
            by that scheme only.
        roles: the roles whose holders may call.
    """

    anonymous: bool = False
    authenticated: bool = False
    principals: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    callers: frozenset[str] = frozenset()

    def permits(self, principal: Principal | None) -> bool:
        """Whether ``principal`` (``None``: not authenticated) may call; nothing listed permits no one."""
        if self.anonymous:
            return True
        if principal is None:
            return False
        if self.authenticated or principal.id in self.principals or principal.caller.key in self.callers:
            return True
        return not self.roles.isdisjoint(principal.roles)

    def ambiguous(self, modes: Iterable[str]) -> str | None:
        """The first bare ``principal:<id>`` entry, when ``modes`` holds several schemes; else ``None``.

        A bare id matches that id proved by any scheme the service accepts:
        with one scheme that is exactly one principal, with several it would
        also admit, say, a JWT whose subject is a signing key's principal.
        """
        if len(tuple(modes)) > 1 and self.principals:
            return min(self.principals)
        return None


def parse_allow(entries: Iterable[object]) -> AllowRule:
    """Compile an ``allow`` list.

    Entries: ``"anonymous"``, ``"authenticated"``, ``"principal:<id>"``
    (that id, proved by whichever scheme the service accepts),
    ``"<scheme>:<id>"`` with a scheme of :data:`SCHEMES` (that id, proved
    by that scheme only), ``"role:<name>"``.

    Raises:
        ValueError: naming the first entry of another form.
    """
    anonymous = authenticated = False
    principals: set[str] = set()
    roles: set[str] = set()
    callers: set[str] = set()
    for entry in entries:
        if entry == _ANONYMOUS:
            anonymous = True
            continue
        if entry == _AUTHENTICATED:
            authenticated = True
            continue
        kind, _, name = entry.partition(":") if isinstance(entry, str) else ("", "", "")
        if not name:
            raise ValueError(f"expected entries {_FORMS}, got {entry!r}")
        if kind == "principal":
            principals.add(name)
        elif kind == "role":
            roles.add(name)
        elif kind in SCHEMES:
            callers.add(f"{kind}:{name}")
        else:
            raise ValueError(f"expected entries {_FORMS}, got {entry!r}")
    return AllowRule(anonymous, authenticated, frozenset(principals), frozenset(roles), frozenset(callers))
