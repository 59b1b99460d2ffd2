"""Bearer tokens (JWT) through PyJWT: one fixed algorithm and key per key id."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms

from ._principal import Principal

__all__ = ["ALLOWED_ALGORITHMS", "MAX_LEEWAY", "JwtKey", "JwtVerifier"]

#: The algorithms a key may be pinned to; ``none`` is never one of them.
ALLOWED_ALGORITHMS = frozenset(
    {
        "HS256", "HS384", "HS512",
        "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512",
        "EdDSA",
    }
)  # fmt: skip
#: The largest clock leeway accepted on ``exp``, ``nbf`` and ``iat``, in seconds.
MAX_LEEWAY = 60
MIN_HMAC_KEY_BYTES = 32
#: The longest token read; a larger one is refused before it is decoded.
MAX_TOKEN_LENGTH = 8192
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", re.ASCII)
_MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class JwtKey:
    """A verification key, pinned to one algorithm.

    Attributes:
        algorithm: the only algorithm tokens with this key id may use.
        key: the prepared key: bytes for HMAC, a public key object otherwise.
    """

    algorithm: str
    key: Any

    @classmethod
    def load(cls, algorithm: str, material: str | bytes) -> JwtKey:
        """Prepare ``material`` for ``algorithm``; a private key is reduced to its public half.

        Raises:
            ValueError: an algorithm not allowed, an HMAC key shorter than 32
                bytes or that looks like a public key, or a key of the wrong
                type for the algorithm.
        """
        if algorithm not in ALLOWED_ALGORITHMS:
            raise ValueError(f"expected an algorithm among {sorted(ALLOWED_ALGORITHMS)}, got {algorithm!r}")
        implementation = get_default_algorithms()[algorithm]
        if algorithm.startswith("HS"):
            raw = material.encode("utf-8") if isinstance(material, str) else material
            if len(raw) < MIN_HMAC_KEY_BYTES:
                raise ValueError(f"an {algorithm} key must be at least {MIN_HMAC_KEY_BYTES} bytes long")
        try:
            # PyJWT refuses a PEM or SSH public key as an HMAC secret, and a
            # key of another family than the algorithm's.
            key = implementation.prepare_key(material)
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            raise ValueError(f"the key cannot be used with {algorithm} ({type(exc).__name__})") from None
        # Only private keys have public_key(); verifying needs the public half alone.
        public = getattr(key, "public_key", None)
        if callable(public):
            key = public()
        return cls(algorithm, key)


class JwtVerifier:
    """Verifies bearer tokens and makes their principal.

    A token is accepted only when its header names a known ``kid``, its
    ``alg`` is the one that key is pinned to, its signature verifies, and
    its ``exp``, ``aud`` and ``iss`` are present and right (with at most
    :data:`MAX_LEEWAY` seconds of leeway). Critical header extensions
    (``crit``) are refused: none is understood.

    Args:
        keys: verification keys by ``kid``.
        audience: the accepted audience(s).
        issuer: the accepted issuer.
        leeway: seconds of clock leeway, 0 to 60.
        principal_claim: the claim holding the principal's id.
        roles_claim: the claim holding a list of role names.
    """

    def __init__(
        self,
        keys: Mapping[str, JwtKey],
        *,
        audience: str | Sequence[str],
        issuer: str,
        leeway: float = 0,
        principal_claim: str = "sub",
        roles_claim: str = "roles",
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be from 0 to {MAX_LEEWAY} seconds, got {leeway}")
        if not keys:
            raise ValueError("at least one key is needed")
        self.keys = dict(keys)
        self.audience = audience if isinstance(audience, str) else list(audience)
        self.issuer = issuer
        self.leeway = leeway
        self.principal_claim = principal_claim
        self.roles_claim = roles_claim
        self._required = ["exp", "aud", "iss", principal_claim]

    def verify(self, token: str) -> tuple[Principal | None, str]:
        """Check ``token``.

        Returns:
            The principal, or ``None`` and the reason it was refused (for
            the server's log, never for the caller).
        """
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
            return None, "malformed bearer token"
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None, "undecodable token header"
        kid = header.get("kid")
        entry = self.keys.get(kid) if isinstance(kid, str) else None
        if entry is None or not isinstance(kid, str):
            return None, "token with an unknown or missing kid"
        if header.get("alg") != entry.algorithm:
            return None, f"token for kid {kid!r} not signed with its pinned algorithm"
        if "crit" in header:
            return None, "token with critical header extensions"
        try:
            claims = jwt.decode(
                token,
                entry.key,
                algorithms=[entry.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self._required},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            return None, f"token refused by verification ({type(exc).__name__})"
        subject = claims.get(self.principal_claim)
        if not isinstance(subject, str) or not subject or len(subject) > _MAX_ID_LENGTH:
            return None, f"token whose {self.principal_claim!r} claim is not a short non-empty string"
        roles = claims.get(self.roles_claim, [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            return None, f"token whose {self.roles_claim!r} claim is not a list of strings"
        return Principal(subject, frozenset(roles), "jwt", kid, claims), ""
