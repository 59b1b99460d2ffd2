"""Retries that cannot hurt: per-operation policy, a retry budget, a circuit breaker, hedging.

The api description declares them (``retry``, ``retry_budget``,
``circuit_breaker`` at the top; ``retry`` and ``hedge`` per operation);
this module checks those keys, naming the key that is wrong, and holds the
per-client state the Client's exchange consults on every attempt.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._errors import ApiError, TransportError
from ._options import Option, check_options, describe
from .checks import positive, positive_int

if TYPE_CHECKING:
    from ._api import Api

__all__ = [
    "API_KEYS",
    "BREAKER_OPTIONS",
    "BUDGET_OPTIONS",
    "HEDGE_OPTIONS",
    "OPERATION_KEYS",
    "RETRY_OPTIONS",
    "BreakerOptions",
    "BudgetOptions",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientPolicies",
    "Hedge",
    "RetryBudget",
    "RetryPolicy",
    "client_policies",
]

_DEFAULT_ON = ("transport", "timeout", 502, 503, 504)


def _retry_on(value: list[Any]) -> tuple[str | int, ...]:
    for item in value:
        if item in ("transport", "timeout"):
            continue
        if isinstance(item, int) and not isinstance(item, bool) and 400 <= item <= 599:
            continue
        raise ValueError(
            f"expected 'transport', 'timeout' or an HTTP status from 400 to 599 in the list, found {item!r}"
        )
    return tuple(value)


def _fraction(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("expected a number from 0 to 1")
    return float(value)


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("expected a number of at least 0")
    return float(value)


def _at_least_two(value: int) -> int:
    if value < 2:
        raise ValueError("expected an integer of at least 2 (the first attempt and a hedge)")
    return value


#: Keys of ``retry``, at the top of the description and per operation.
RETRY_OPTIONS: dict[str, Option] = {
    "attempts": Option(
        (int, type(None)), None, "Attempts in all, the first included; default: the api's retries + 1.", check=None
    ),
    "backoff": Option(
        float, 0.05, "Seconds of the first back-off; it doubles with each retry, fully jittered.", check=positive
    ),
    "max_backoff": Option(float, 1.0, "The longest back-off, in seconds.", check=positive),
    "on": Option(list, list(_DEFAULT_ON), "What is retried: 'transport', 'timeout', HTTP statuses.", check=_retry_on),
    "attempt_timeout": Option(
        (float, type(None)),
        None,
        "Read timeout of each attempt, so that one slow attempt leaves time to retry.",
        check=lambda value: None if value is None else positive(value),
    ),
}

#: Keys of ``retry_budget``; ``null`` switches the budget off.
BUDGET_OPTIONS: dict[str, Option] = {
    "ratio": Option(float, 0.2, "Retries allowed per call made, over the window.", check=_fraction),
    "per_second": Option(float, 10.0, "Retries allowed per second whatever the calls.", check=_non_negative),
    "window": Option(float, 10.0, "Seconds over which calls and retries are counted.", check=positive),
}

#: Keys of ``circuit_breaker``; ``null`` (the default) switches it off.
BREAKER_OPTIONS: dict[str, Option] = {
    "failures": Option(int, 5, "Consecutive failed attempts that open the circuit.", check=positive_int),
    "reset": Option(float, 5.0, "Seconds the circuit stays open before a probe is let through.", check=positive),
    "probes": Option(int, 1, "Calls let through at once while half-open.", check=positive_int),
}

#: Keys of an operation's ``hedge``.
HEDGE_OPTIONS: dict[str, Option] = {
    "delay": Option(float, 0.05, "Seconds without an answer before the next attempt is sent.", check=positive),
    "attempts": Option(int, 2, "Attempts in flight at most, the first included.", check=_at_least_two),
}


@dataclass(frozen=True)
class RetryPolicy:
    """When a call is tried again: an api's ``retry``, with an operation's overrides.

    Only idempotent operations, and calls that carry an ``Idempotency-Key``,
    are retried. A retry never starts after the call's deadline.

    Attributes:
        attempts: attempts in all, the first included.
        backoff: the first back-off's ceiling, in seconds; each retry
            doubles it, and the wait is drawn uniformly below it.
        max_backoff: the largest ceiling, in seconds.
        on: what is retried: ``"transport"`` (the connection failed or
            broke), ``"timeout"`` (an attempt timed out), HTTP statuses.
        attempt_timeout: the read timeout of each attempt, or None for the
            call's.
    """

    attempts: int
    backoff: float = 0.05
    max_backoff: float = 1.0
    on: tuple[str | int, ...] = _DEFAULT_ON
    attempt_timeout: float | None = None

    @property
    def statuses(self) -> frozenset[int]:
        """The HTTP statuses retried."""
        return frozenset(item for item in self.on if isinstance(item, int))

    def retries_error(self, error: TransportError) -> bool:
        """Whether an attempt that raised ``error`` is tried again."""
        from ._errors import CallTimeout

        return ("timeout" if isinstance(error, CallTimeout) else "transport") in self.on

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (from 1): exponential, full jitter."""
        ceiling = min(self.max_backoff, self.backoff * 2**retry)
        return random.uniform(0, ceiling)  # noqa: S311 - spreading callers, not security


@dataclass(frozen=True)
class BudgetOptions:
    """An api's ``retry_budget``: see ``RetryBudget``."""

    ratio: float = 0.2
    per_second: float = 10.0
    window: float = 10.0


@dataclass(frozen=True)
class BreakerOptions:
    """An api's ``circuit_breaker``: see ``CircuitBreaker``."""

    failures: int = 5
    reset: float = 5.0
    probes: int = 1


@dataclass(frozen=True)
class Hedge:
    """An idempotent operation's ``hedge``: more attempts in flight when the first is slow.

    Attributes:
        delay: seconds without an answer before the next attempt is sent.
        attempts: attempts in flight at most, the first included.
    """

    delay: float = 0.05
    attempts: int = 2


def _nested(options: Mapping[str, Option], *, defaults: bool = True) -> Callable[[Any], Any]:
    # The Option check of a nested mapping: its own keys checked, and the one
    # that is wrong named in the message (the Option names the outer key).
    def check(value: Any) -> Any:
        if value is None:
            return None
        try:
            checked = check_options("", options, value, defaults=defaults)
            if "attempts" in checked and checked["attempts"] is not None:
                _attempts(checked["attempts"])
        except ApiError as exc:
            raise ValueError(f"{exc.key!r}: {exc.problem}") from None
        return checked

    return check


def _attempts(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError("attempts", f"expected an integer of at least 1, got {describe(value)}")


#: The core's top-level keys for the client's retries; ``_api`` declares them.
API_KEYS: dict[str, Option] = {
    "retry": Option(
        dict,
        {},
        "The client's retry policy: attempts, backoff, max_backoff, on, attempt_timeout.",
        check=_nested(RETRY_OPTIONS),
    ),
    "retry_budget": Option(
        (dict, type(None)),
        {},
        "The client's retry budget: ratio, per_second, window; null switches it off.",
        check=_nested(BUDGET_OPTIONS),
    ),
    "circuit_breaker": Option(
        (dict, type(None)),
        None,
        "The client's circuit breaker: failures, reset, probes; null (the default) for none.",
        check=_nested(BREAKER_OPTIONS),
    ),
}

#: The core's operation keys for the client's retries; ``_api`` declares them.
OPERATION_KEYS: dict[str, Option] = {
    "retry": Option(
        (dict, type(None)),
        None,
        "This operation's changes to the api's retry policy.",
        check=_nested(RETRY_OPTIONS, defaults=False),
    ),
    "hedge": Option(
        (dict, type(None)),
        None,
        "Hedge this idempotent operation's calls: delay, attempts.",
        check=_nested(HEDGE_OPTIONS),
    ),
}


@dataclass(frozen=True)
class ClientPolicies:
    """What a Client reads from its api description for retries, once, when it is built.

    Attributes:
        retry: each operation's retry policy, the api's with its overrides.
        hedge: each hedged operation's hedge.
        budget: the retry budget's options, or None.
        breaker: the circuit breaker's options, or None.
    """

    retry: Mapping[str, RetryPolicy]
    hedge: Mapping[str, Hedge]
    budget: BudgetOptions | None
    breaker: BreakerOptions | None


def client_policies(api: Api) -> ClientPolicies:
    """Read the retry keys of a checked api description (``parse_api`` checked them).

    Raises:
        ApiError: ``operations.<name>.hedge`` on an operation that is not
            idempotent.
    """
    raw = api.raw

    def checked(key: str, given: Any, options: Mapping[str, Option], *, defaults: bool = True) -> dict[str, Any] | None:
        if given is None:
            return None
        return check_options(key, options, given, defaults=defaults)

    base = checked("retry", raw.get("retry", {}), RETRY_OPTIONS) or {}
    if base.get("attempts") is None:
        base["attempts"] = api.retries + 1
    base["on"] = tuple(base["on"])
    policy = RetryPolicy(**base)
    budget = checked("retry_budget", raw.get("retry_budget", {}), BUDGET_OPTIONS)
    breaker = checked("circuit_breaker", raw.get("circuit_breaker"), BREAKER_OPTIONS)
    given_operations = raw.get("operations", [])
    retry: dict[str, RetryPolicy] = {}
    hedge: dict[str, Hedge] = {}
    for name, operation in api.operations.items():
        options = given_operations.get(name) if isinstance(given_operations, Mapping) else None
        options = options if isinstance(options, Mapping) else {}
        key = f"operations.{name}"
        overrides = checked(f"{key}.retry", options.get("retry"), RETRY_OPTIONS, defaults=False) or {}
        if overrides.get("attempts", 0) is None:
            del overrides["attempts"]
        if "on" in overrides:
            overrides["on"] = tuple(overrides["on"])
        retry[name] = replace(policy, **overrides) if overrides else policy
        hedged = checked(f"{key}.hedge", options.get("hedge"), HEDGE_OPTIONS)
        if hedged is not None:
            if not operation.idempotent:
                raise ApiError(f"{key}.hedge", "only an idempotent operation may be hedged: set 'idempotent': true")
            hedge[name] = Hedge(**hedged)
    return ClientPolicies(
        retry=retry,
        hedge=hedge,
        budget=None if budget is None else BudgetOptions(**budget),
        breaker=None if breaker is None else BreakerOptions(**breaker),
    )


class RetryBudget:
    """Caps retries at ``ratio`` of the calls plus ``per_second`` a second, over a sliding window.

    Every call deposits; every retry (or hedge) withdraws, and is refused
    when the window already holds ``ratio * calls + per_second * window``
    retries. A service that fails every call is then sent at most 1.2 times
    the calls (with the defaults) instead of ``attempts`` times them. Kept
    in one-second slots, so a call costs a lock and a few additions.

    Args:
        options: the ratio, per-second floor and window.
        clock: the ``time.monotonic`` to read; tests pass their own.
    """

    __slots__ = ("_calls", "_clock", "_lock", "_retries", "_stamps", "options", "refused")

    def __init__(self, options: BudgetOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        slots = max(1, math.ceil(options.window))
        self._stamps = [-1] * slots
        self._calls = [0] * slots
        self._retries = [0] * slots
        self._lock = threading.Lock()
        self._clock = clock
        self.refused = 0

    def deposit(self) -> None:
        """Count one call."""
        now = int(self._clock())
        slot = now % len(self._stamps)
        with self._lock:
            if self._stamps[slot] != now:
                self._reset(slot, now)
            self._calls[slot] += 1

    def _reset(self, slot: int, now: int) -> None:
        self._stamps[slot] = now
        self._calls[slot] = 0
        self._retries[slot] = 0

    def _totals(self, now: int) -> tuple[int, int]:
        span = len(self._stamps)
        calls = retries = 0
        for slot, stamp in enumerate(self._stamps):
            if now - stamp < span:
                calls += self._calls[slot]
                retries += self._retries[slot]
        return calls, retries

    def withdraw(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        now = int(self._clock())
        slot = now % len(self._stamps)
        options = self.options
        with self._lock:
            calls, retries = self._totals(now)
            if retries + 1 > options.ratio * calls + options.per_second * len(self._stamps):
                self.refused += 1
                return False
            if self._stamps[slot] != now:
                self._reset(slot, now)
            self._retries[slot] += 1
            return True

    def available(self) -> float:
        """Retries the budget would allow now."""
        now = int(self._clock())
        with self._lock:
            calls, retries = self._totals(now)
        return max(0.0, self.options.ratio * calls + self.options.per_second * len(self._stamps) - retries)

    def __repr__(self) -> str:
        return f"<RetryBudget {self.available():.1f} retries available, {self.refused} refused>"


class CircuitOpen(TransportError):
    """The endpoint's circuit breaker is open: the call was not sent.

    Attributes:
        retry_in: seconds until the breaker lets a probe through.
    """

    def __init__(self, message: str, *, operation: str, retry_in: float) -> None:
        super().__init__(message, operation=operation)
        self.retry_in = retry_in


CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops calling an endpoint that keeps failing, and probes it before trusting it again.

    ``closed``: every attempt goes; ``failures`` consecutive failed attempts
    (a transport failure, or an answer 502, 503 or 504) open it. ``open``:
    calls fail at once with ``CircuitOpen`` for ``reset`` seconds.
    ``half_open``: up to ``probes`` attempts go through; the first that
    succeeds closes it, one that fails opens it again. Any other answer,
    an error included, counts as a success: the service is there.

    Attributes:
        endpoint: the base URL it guards.
        state: ``"closed"``, ``"open"`` or ``"half_open"`` (read
            ``current_state`` for what the next call would meet).
        failures: consecutive failed attempts.
        opened: times it opened.
    """

    __slots__ = ("_clock", "_lock", "_opened_at", "_probing", "endpoint", "failures", "opened", "options", "state")

    def __init__(self, options: BreakerOptions, endpoint: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.endpoint = endpoint
        self.state = CLOSED
        self.failures = 0
        self.opened = 0
        self._opened_at = 0.0
        self._probing = 0
        self._lock = threading.Lock()
        self._clock = clock

    def current_state(self) -> str:
        """The state the next call meets: an open circuit whose time is up reads ``half_open``."""
        if self.state == OPEN and self._clock() - self._opened_at >= self.options.reset:
            return HALF_OPEN
        return self.state

    def admit(self, operation: str) -> bool:
        """Let one attempt through, or raise; True when it is a half-open probe.

        Raises:
            CircuitOpen: the circuit is open, or half-open with its probes
                all in flight.
        """
        if self.state == CLOSED:
            return False
        with self._lock:
            state = self.state
            if state == CLOSED:
                return False
            now = self._clock()
            if state == OPEN:
                left = self._opened_at + self.options.reset - now
                if left > 0:
                    raise CircuitOpen(
                        f"{operation}: the circuit to {self.endpoint} is open after {self.failures} failures;"
                        f" next probe in {left:.2f}s",
                        operation=operation,
                        retry_in=left,
                    )
                self.state = HALF_OPEN
                self._probing = 0
            if self._probing >= self.options.probes:
                raise CircuitOpen(
                    f"{operation}: the circuit to {self.endpoint} is half-open and its probe is in flight",
                    operation=operation,
                    retry_in=0.0,
                )
            self._probing += 1
            return True

    def success(self, probe: bool) -> str | None:
        """Record an attempt that reached the service; ``"closed"`` if it closed the circuit."""
        if not probe:
            if self.failures:
                with self._lock:
                    self.failures = 0
            return None
        with self._lock:
            self._probing -= 1
            if self.state != HALF_OPEN:
                return None
            self.state = CLOSED
            self.failures = 0
            return CLOSED

    def failure(self, probe: bool) -> str | None:
        """Record a failed attempt; ``"opened"`` if it opened the circuit."""
        with self._lock:
            self.failures += 1
            if probe:
                self._probing -= 1
            if (probe and self.state == HALF_OPEN) or (self.state == CLOSED and self.failures >= self.options.failures):
                self.state = OPEN
                self._opened_at = self._clock()
                self.opened += 1
                return "opened"
            return None

    def release(self, probe: bool) -> None:
        """An attempt ended with neither answer nor transport failure (a hook raised)."""
        if probe:
            with self._lock:
                self._probing -= 1

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.endpoint} {self.current_state()}, {self.failures} failures>"
