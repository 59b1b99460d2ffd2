"""The client side: wait out ``Retry-After`` within a budget, and optional pacing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pyservice

from ._exceptions import RequestThrottled
from ._rate import MICROSECONDS, Rate

if TYPE_CHECKING:
    from ._plugin import Throttle

__all__ = ["Pacer", "setup_client"]


class Pacer:
    """Spaces calls so they stay under a known limit (client-side GCRA).

    Each call reserves the next slot under a lock, then sleeps until it, so
    threads sharing the pacer keep the rate between them.

    Args:
        rate: the limit to stay under.
        burst: calls that may go back to back; 1 spaces every call evenly.
        max_wait: the longest a call waits for its slot, in seconds; a call
            that would wait longer raises ``RequestThrottled`` without being
            sent and without taking a slot.
        clock: seconds, monotonic.
        sleep: called with the seconds to wait.
    """

    def __init__(
        self,
        rate: Rate,
        burst: int = 1,
        *,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.rate = rate
        self.interval = rate.interval
        self.capacity = burst * self.interval
        self.max_wait = int(max_wait * MICROSECONDS)
        self.clock = clock
        self.sleep = sleep
        self._tat = 0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Wait for the next slot; returns the seconds waited.

        Raises:
            RequestThrottled: the slot is further away than ``max_wait``.
        """
        with self._lock:
            now = round(self.clock() * MICROSECONDS)
            tat = self._tat if self._tat > now else now
            delay = tat + self.interval - self.capacity - now
            if delay > self.max_wait:
                raise RequestThrottled(
                    f"client-side pacing at {self.rate}: the next slot is {delay / MICROSECONDS:.3f} s away,"
                    f" more than max_wait ({self.max_wait / MICROSECONDS:g} s)"
                )
            self._tat = tat + self.interval
        if delay > 0:
            self.sleep(delay / MICROSECONDS)
            return delay / MICROSECONDS
        return 0.0


def _retry_after(context: Any) -> int | None:
    answer = context.http_response
    value = answer.headers.get("Retry-After") if answer is not None else None
    if value is not None and value.strip().isdigit():
        return int(value)
    return None


def setup_client(plugin: Throttle, client: pyservice.Client) -> None:
    """Register the retrying and pacing hook on the operations that want them."""
    config = plugin.config
    clock: Callable[[], float] = config["clock"] or time.monotonic
    sleep: Callable[[float], object] = config["sleep"] or time.sleep
    shared: Pacer | None = None
    for name, operation in client.api.operations.items():
        op_config = plugin.operation_config(operation)
        if op_config is None or (op_config["retries"] == 0 and op_config["pace"] is None):
            continue
        pacer = None
        if op_config["pace"] is not None:
            overrides = operation.plugins.get(plugin.name)
            own = isinstance(overrides, Mapping) and ("pace" in overrides or "pace_burst" in overrides)
            if own:
                pacer = _pacer(op_config, clock, sleep)
            else:
                shared = shared or _pacer(op_config, clock, sleep)
                pacer = shared
        hook = _hook(op_config, pacer, clock, sleep)
        client.plugin("attempt", operations=[name], name=plugin.name)(hook)


def _pacer(config: Mapping[str, Any], clock: Callable[[], float], sleep: Callable[[float], object]) -> Pacer:
    return Pacer(config["pace"], config["pace_burst"], max_wait=config["max_wait"], clock=clock, sleep=sleep)


def _hook(
    config: Mapping[str, Any],
    pacer: Pacer | None,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
) -> Callable[[Any], None]:
    retries: int = config["retries"]
    max_wait: float = config["max_wait"]
    jitter: float = config["jitter"]

    def throttled(context: Any) -> None:
        # Around each HTTP attempt: every attempt is paced, and signed afresh by
        # the plugins further in, and a 429 is sent again through the client's
        # own attempt loop (context.retry_after), so the call stays one call.
        if pacer is not None:
            pacer.wait()
        if context.attempt == 1:
            context.throttle_started = clock()
            context.throttle_retries = 0
        context.process_request()
        if context.status != 429 or context.throttle_retries >= retries:
            return
        delay = (_retry_after(context) or 1) * (1 + random.uniform(0, jitter))  # noqa: S311 - spreading, not security
        if clock() + delay - context.throttle_started > max_wait:
            return  # the budget is spent: the caller gets RequestThrottled
        # A 429 means the service refused before running the handler, so any
        # operation, idempotent or not, is safe to send again.
        context.throttle_retries += 1
        sleep(delay)
        context.retry_after = 0.0

    return throttled
