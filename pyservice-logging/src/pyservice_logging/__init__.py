"""pyservice-logging: structured access logs with structlog, request ids, redaction.

Two plugins, enabled by name in an api description's ``plugins``:
``logging`` (:class:`LoggingPlugin`) and ``redact`` (:class:`RedactPlugin`).
"""

from __future__ import annotations

from ._logging import CALL_FIELDS, LoggingPlugin
from ._redact import RedactPlugin
from ._redaction import DEFAULT_PATTERNS, MAX_DEPTH, TRUNCATED, Redactor
from ._request_id import current_request_id, parse_traceparent, valid_request_id

__all__ = [
    "CALL_FIELDS",
    "DEFAULT_PATTERNS",
    "MAX_DEPTH",
    "TRUNCATED",
    "LoggingPlugin",
    "RedactPlugin",
    "Redactor",
    "current_request_id",
    "parse_traceparent",
    "valid_request_id",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing the package does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-logging")
    raise AttributeError(f"module 'pyservice_logging' has no attribute {name!r}")
