"""The exceptions the plugin whitelists, by name, with their HTTP status."""

from __future__ import annotations

from pyservice.exceptions import exception_class

__all__ = [
    "EXCEPTIONS",
    "IdempotencyAnswerNotKept",
    "IdempotencyKeyInUse",
    "IdempotencyKeyInvalid",
    "IdempotencyKeyRequired",
    "IdempotencyKeyReused",
    "IdempotencyUnavailable",
]

#: 400: the operation requires an ``Idempotency-Key`` and the call sent none.
IdempotencyKeyRequired = exception_class("IdempotencyKeyRequired")
#: 400: the key is empty, too long, or not visible ASCII.
IdempotencyKeyInvalid = exception_class("IdempotencyKeyInvalid")
#: 409 with ``Retry-After``: the first call with this key is still running.
IdempotencyKeyInUse = exception_class("IdempotencyKeyInUse")
#: 409: the first call with this key completed, and its answer was too large to keep.
IdempotencyAnswerNotKept = exception_class("IdempotencyAnswerNotKept")
#: 422: the key was used before with a different request.
IdempotencyKeyReused = exception_class("IdempotencyKeyReused")
#: 503 with ``Retry-After``: the store does not answer, so the call was not run (``on_error: closed``).
IdempotencyUnavailable = exception_class("IdempotencyUnavailable")

EXCEPTIONS = {
    "IdempotencyKeyRequired": 400,
    "IdempotencyKeyInvalid": 400,
    "IdempotencyKeyInUse": 409,
    "IdempotencyAnswerNotKept": 409,
    "IdempotencyKeyReused": 422,
    "IdempotencyUnavailable": 503,
}
