"""The ``throttle`` plugin: its declared config, and its setup on either side."""

from __future__ import annotations

from typing import ClassVar

import pyservice
from pyservice.checks import callable_or_import

from ._backend import Backend
from ._client import setup_client
from ._config import (
    check_backend,
    check_burst,
    check_fraction,
    check_key,
    check_non_negative,
    check_on_error,
    check_positive,
    check_positive_int,
    check_rate,
)
from ._exceptions import EXCEPTIONS
from ._service import setup_service

__all__ = ["Throttle"]

_LIMIT = pyservice.Option(
    (str, type(None)), None, "Calls allowed per period per caller, like '100/second'; null: no limit.", check=check_rate
)
_BURST = pyservice.Option(
    (int, type(None)), None, "Calls that may arrive back to back; null: the limit's count.", check=check_burst
)
_KEY = pyservice.Option(
    str, "caller", "What a budget belongs to: caller, header:<Name> or field:<name>.", check=check_key
)
_BUCKET = pyservice.Option((str, type(None)), None, "Operations with the same bucket share one budget per caller.")
_ON_ERROR = pyservice.Option(
    str, "open", "When the backend fails: open (allow) or closed (ThrottleUnavailable).", check=check_on_error
)
_RETRIES = pyservice.Option(
    int,
    3,
    "Client: calls sent again after RequestThrottled; 0 turns retrying off.",
    check=check_non_negative,
)
_MAX_WAIT = pyservice.Option(
    float, 30.0, "Client: seconds one call may spend waiting in all.", check=check_non_negative
)
_PACE = pyservice.Option(
    (str, type(None)), None, "Client: a limit to stay under by spacing calls; null: no pacing.", check=check_rate
)
_PACE_BURST = pyservice.Option(int, 1, "Client: calls the pacing lets go back to back.", check=check_positive_int)


class Throttle(pyservice.Plugin):
    """Rate limiting: GCRA per caller on the service, waiting and pacing on the client.

    On the service, each throttled operation gets one hook that asks the
    backend (in memory, Redis, or your own :class:`Backend`) for a decision,
    adds the rate-limit headers to every answer, and refuses a call over the
    limit with ``RequestThrottled`` (HTTP 429, ``Retry-After``). On the
    client, the same plugin waits out ``Retry-After`` and sends the call
    again within a bounded budget, and can space calls to stay under a known
    limit. See the package README for every key.
    """

    name: ClassVar[str] = "throttle"
    # Inside auth wherever the api lists it, so calls are counted per authenticated caller, not per address.
    after: ClassVar[tuple[str, ...]] = ("auth",)
    exceptions: ClassVar[dict[str, int]] = EXCEPTIONS
    options: ClassVar[dict[str, pyservice.Option]] = {
        "limit": _LIMIT,
        "burst": _BURST,
        "key": _KEY,
        "bucket": _BUCKET,
        "on_error": _ON_ERROR,
        "backend": pyservice.Option(
            (str, Backend),
            "memory",
            "memory, redis, a Backend, or 'module:attribute' naming one or a factory of one.",
            check=check_backend,
        ),
        "redis_url": pyservice.Option((str, type(None)), None, "The Redis server of backend 'redis'.", secret=True),
        "prefix": pyservice.Option(str, "pyservice:throttle:", "Prefix of the Redis keys."),
        "timeout": pyservice.Option(
            float, 0.1, "Seconds allowed to connect to Redis and for each answer.", check=check_positive
        ),
        "retry_interval": pyservice.Option(
            float,
            0.5,
            "Seconds calls skip a backend that just failed; 0 tries it every call.",
            check=check_non_negative,
        ),
        "warn_interval": pyservice.Option(
            float, 60.0, "Seconds between two warnings about a failing backend.", check=check_non_negative
        ),
        "per_process": pyservice.Option(
            bool, False, "Accept a backend that is not shared under several worker processes."
        ),
        "max_keys": pyservice.Option(int, 100_000, "Most callers the memory backend tracks.", check=check_positive_int),
        "clock": pyservice.Option(
            object,
            None,
            "A callable returning seconds, or 'module:attribute' naming one; for tests.",
            check=callable_or_import,
        ),
        "retries": _RETRIES,
        "max_wait": _MAX_WAIT,
        "jitter": pyservice.Option(
            float, 0.1, "Client: extra random wait, as a fraction of Retry-After.", check=check_fraction
        ),
        "pace": _PACE,
        "pace_burst": _PACE_BURST,
        "sleep": pyservice.Option(
            object, None, "Client: a callable taking seconds to wait; for tests.", check=callable_or_import
        ),
    }
    operation_options: ClassVar[dict[str, pyservice.Option]] = {
        "limit": _LIMIT,
        "burst": _BURST,
        "key": _KEY,
        "bucket": _BUCKET,
        "on_error": _ON_ERROR,
        "retries": _RETRIES,
        "max_wait": _MAX_WAIT,
        "pace": _PACE,
        "pace_burst": _PACE_BURST,
    }

    backend: Backend | None = None

    def setup(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Register the service-side or the client-side hooks on ``owner``.

        Raises:
            ApiError: a backend that is not shared under several worker
                processes (without ``per_process``), backend ``redis``
                without ``redis_url``, or ``auth`` listed after ``throttle``.
        """
        if isinstance(owner, pyservice.Service):
            self.backend = setup_service(self, owner)
        else:
            setup_client(self, owner)

    def stop(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Close the Redis connections of a backend the plugin built, when the process stops.

        Each worker closes its own (pyservice-core's per-process lifecycle);
        a ``Backend`` the application gave is the application's to close.
        """
        backend = getattr(self, "backend", None)
        if owner.side == "service" and backend is not None and isinstance(self.config["backend"], str):
            backend.close()
