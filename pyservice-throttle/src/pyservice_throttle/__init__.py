"""pyservice-throttle: rate limiting that holds across workers and hosts.

Enable it in the api description (``"plugins": {"throttle": {"limit":
"100/second"}}``). The service refuses calls over the limit with
``RequestThrottled`` (HTTP 429, ``Retry-After``); the client waits and
retries within a budget. The public API lives here; the modules behind it
are private.
"""

from __future__ import annotations

from ._backend import Backend, BackendUnavailable, MemoryBackend
from ._client import Pacer
from ._exceptions import RequestThrottled, ThrottleUnavailable
from ._gcra import Decision, decide, gcra
from ._plugin import Throttle
from ._rate import Rate, parse_rate
from ._redis import GCRA_SCRIPT, RedisBackend

__all__ = [
    "GCRA_SCRIPT",
    "Backend",
    "BackendUnavailable",
    "Decision",
    "MemoryBackend",
    "Pacer",
    "Rate",
    "RedisBackend",
    "RequestThrottled",
    "Throttle",
    "ThrottleUnavailable",
    "decide",
    "gcra",
    "parse_rate",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing the plugin does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-throttle")
    raise AttributeError(f"module 'pyservice_throttle' has no attribute {name!r}")
