"""pyservice-idempotency: idempotency keys, so that a call sent again runs once.

Enable it in the api description (``"plugins": {"idempotency": {...}}``): a
client sends an ``Idempotency-Key`` with every call of an operation that is
not declared idempotent, and a service answers a duplicate with the stored
answer of the first. See the README for every key.
"""

from __future__ import annotations

from ._backend import Backend, BackendUnavailable
from ._client import HEADER
from ._exceptions import (
    EXCEPTIONS,
    IdempotencyAnswerNotKept,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    IdempotencyUnavailable,
)
from ._memory import MemoryBackend
from ._plugin import Idempotency, idempotency_of
from ._records import FORMAT
from ._redis import RedisBackend
from ._service import REPLAYED_HEADER

__all__ = [
    "EXCEPTIONS",
    "FORMAT",
    "HEADER",
    "REPLAYED_HEADER",
    "Backend",
    "BackendUnavailable",
    "Idempotency",
    "IdempotencyAnswerNotKept",
    "IdempotencyKeyInUse",
    "IdempotencyKeyInvalid",
    "IdempotencyKeyRequired",
    "IdempotencyKeyReused",
    "IdempotencyUnavailable",
    "MemoryBackend",
    "RedisBackend",
    "idempotency_of",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing the plugin does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-idempotency")
    raise AttributeError(f"module 'pyservice_idempotency' has no attribute {name!r}")
