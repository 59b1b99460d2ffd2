"""The exceptions the plugin whitelists, by name, with their HTTP status."""

from __future__ import annotations

from pyservice.exceptions import exception_class

__all__ = ["EXCEPTIONS", "RequestThrottled", "ThrottleUnavailable"]

#: Raised on the service for a refused call (HTTP 429 with Retry-After), and
#: on the client when its retry budget or pacing gives up.
RequestThrottled = exception_class("RequestThrottled")
#: Raised on the service when the backend fails and ``on_error`` is ``closed`` (HTTP 503).
ThrottleUnavailable = exception_class("ThrottleUnavailable")

EXCEPTIONS = {"RequestThrottled": 429, "ThrottleUnavailable": 503}
