"""The exceptions the plugin whitelists, by name, with their HTTP status.

Their messages are fixed: a refusal never tells the caller which check
failed (the reason goes to the ``pyservice_auth`` logger instead).
"""

from __future__ import annotations

from pyservice.exceptions import exception_class

__all__ = ["EXCEPTIONS", "AuthUnavailable", "Forbidden", "Unauthenticated"]

#: No valid credentials: missing, malformed, stale, replayed, unknown or wrong (HTTP 401).
Unauthenticated = exception_class("Unauthenticated")
#: The caller's address or principal may not call this operation (HTTP 403).
Forbidden = exception_class("Forbidden")
#: The nonce store does not answer, so a signed request cannot be checked for replay (HTTP 503).
AuthUnavailable = exception_class("AuthUnavailable")

EXCEPTIONS = {"Unauthenticated": 401, "Forbidden": 403, "AuthUnavailable": 503}

#: The only messages a caller ever sees.
UNAUTHENTICATED_MESSAGE = "authentication failed"
FORBIDDEN_MESSAGE = "not allowed"
UNAVAILABLE_MESSAGE = "authentication is unavailable"
