"""Who is calling: one typed identity every plugin keys on, so no two callers share a key.

An authentication plugin proves a principal with a scheme (an API key, a
signed request, a JWT); a call nobody authenticated comes from an address.
A bare string cannot tell ``"127.0.0.1"`` the JWT subject from ``127.0.0.1``
the anonymous peer, nor the signing key's principal ``"signer"`` from a JWT
whose subject is ``"signer"``. A ``Caller`` carries its kind and
scheme, and its ``key`` spells them out.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["Caller", "anonymous_callers"]

#: Scheme names: lower-case identifiers, so the key splits at its first ``:``.
_SCHEME = re.compile(r"[a-z][a-z0-9_]*")
#: Words the keys of the other kinds start with; no scheme may take them.
_RESERVED: Final = frozenset({"anonymous", "credential"})
# Anonymous identities by address, made once each: an anonymous call (the
# common case) allocates nothing. Addresses come from peers, so it is bounded.
_ANONYMOUS_LIMIT = 4096

CallerKind = Literal["principal", "anonymous", "credential"]


class Caller:
    """An immutable caller identity: ``context.caller_identity``.

    Three kinds, made by the class methods, never by the constructor:

    - ``principal``: on a service, a principal an authentication plugin
      proved, with the scheme that proved it (``principal``);
    - ``anonymous``: on a service, a call nobody authenticated, by the
      address it came from (``anonymous``);
    - ``credential``: on a client, the credential its plugins send, by a
      fingerprint that never holds the secret (``credential``).

    Two identities are equal when their keys are, and only then.

    Attributes:
        kind: ``"principal"``, ``"anonymous"`` or ``"credential"``.
        scheme: how the principal was proved or the credential is sent
            (``"api_key"``, ``"signed"``, ``"jwt"``, a plugin's own); ``None``
            for an anonymous caller.
        id: the principal's id, the anonymous caller's address (``None``
            when the peer has none, as over a Unix socket), or the
            credential's fingerprint.
        key: one string for cache, throttle and other keys, unambiguous
            across kinds and schemes: ``"jwt:alice"``, ``"api_key:billing"``,
            ``"anonymous:127.0.0.1"``, ``"credential:api_key:3f2a..."``.
            Split it at its first ``:``: scheme names hold none.
    """

    __slots__ = ("id", "key", "kind", "scheme")

    kind: CallerKind
    scheme: str | None
    id: str | None
    key: str

    def __init__(self) -> None:
        raise TypeError("make a Caller with Caller.principal(), Caller.anonymous() or Caller.credential()")

    @classmethod
    def _make(cls, kind: CallerKind, scheme: str | None, id: str | None, key: str) -> Caller:
        caller = object.__new__(cls)
        set_slot = object.__setattr__
        set_slot(caller, "kind", kind)
        set_slot(caller, "scheme", scheme)
        set_slot(caller, "id", id)
        set_slot(caller, "key", key)
        return caller

    @classmethod
    def principal(cls, scheme: str, id: str) -> Caller:
        """A principal proved by ``scheme``; its key is ``"<scheme>:<id>"``.

        Args:
            scheme: a lower-case identifier naming how it was proved, not
                ``"anonymous"`` or ``"credential"``.
            id: the principal's id.

        Raises:
            ValueError: ``scheme`` is not such a name.
            TypeError: ``id`` is not a string.
        """
        _check_scheme(scheme)
        if not isinstance(id, str):
            raise TypeError(f"a principal's id must be a string, got {type(id).__name__}")
        return cls._make("principal", scheme, id, f"{scheme}:{id}")

    @classmethod
    def anonymous(cls, address: str | None) -> Caller:
        """A call nobody authenticated, from ``address``; its key is ``"anonymous:<address>"``.

        The same object is returned for the same address (within a bounded
        table), so keying an anonymous call allocates nothing.

        Args:
            address: the caller's address; ``None`` when the peer has none.
        """
        caller = anonymous_callers.get(address)
        if caller is None:
            if address is not None and not isinstance(address, str):
                raise TypeError(f"an address must be a string or None, got {type(address).__name__}")
            caller = cls._make("anonymous", None, address, f"anonymous:{address or ''}")
            if len(anonymous_callers) >= _ANONYMOUS_LIMIT:
                anonymous_callers.clear()
            anonymous_callers[address] = caller
        return caller

    @classmethod
    def credential(cls, scheme: str, fingerprint: str) -> Caller:
        """A client's credential, by a fingerprint; its key is ``"credential:<scheme>:<fingerprint>"``.

        Args:
            scheme: how the credential is sent (as for ``principal``).
            fingerprint: a digest of the credential that does not reveal it
                (pyservice-auth sends a SHA-256 of it); never the secret.

        Raises:
            ValueError: ``scheme`` is not a valid name, or ``fingerprint`` is empty.
        """
        _check_scheme(scheme)
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError("a credential's fingerprint must be a non-empty string")
        return cls._make("credential", scheme, fingerprint, f"credential:{scheme}:{fingerprint}")

    @property
    def is_anonymous(self) -> bool:
        """Whether nobody authenticated the call."""
        return self.kind == "anonymous"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Caller is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Caller is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Caller) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Caller._make, (self.kind, self.scheme, self.id, self.key))

    def __str__(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"<Caller {self.key}>"


#: The anonymous identities made so far, by address (bounded); read by the context's default.
anonymous_callers: dict[str | None, Caller] = {}


def _check_scheme(scheme: str) -> None:
    if not isinstance(scheme, str) or _SCHEME.fullmatch(scheme) is None or scheme in _RESERVED:
        raise ValueError(
            f"expected a scheme name of lower-case letters, digits and '_' (not 'anonymous' or 'credential'),"
            f" got {scheme!r}"
        )
