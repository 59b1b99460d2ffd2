"""The service side: one hook per protected operation, in the request scope, composed at start-up."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from pyservice import Container, ServiceContext

from ._backend import Backend, BackendUnavailable
from ._exceptions import (
    IdempotencyAnswerNotKept,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    IdempotencyUnavailable,
)
from ._records import DONE, RUNNING, done_record, fingerprint, parse_key, read_record, running_record, too_large_record

__all__ = ["REPLAYED_HEADER", "Guard", "Policy", "service_hook"]

logger = logging.getLogger("pyservice.idempotency")

#: The header a replayed answer carries (``Idempotent-Replayed: true``), as Stripe and others name it;
#: the IETF draft leaves the marking of a replay to the service.
REPLAYED_HEADER = "Idempotent-Replayed"
_REPLAYED = (REPLAYED_HEADER, "true")
_ENVIRON_KEY = "HTTP_IDEMPOTENCY_KEY"


class _Tokens:
    """Tokens that make each claim its call's own: a random prefix per process, and a counter.

    Unique across processes and hosts (64 random bits, drawn again in a
    forked child) without a system call per claim.
    """

    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


_tokens = _Tokens()
os.register_at_fork(after_in_child=_tokens.reset)


class Guard:
    """What every protected operation of one service shares: the backend, its health, the warnings.

    A backend that failed is left alone for ``retry_interval`` seconds, so a
    Redis that is down costs one timeout per interval, not one per call. A
    failure the call's own deadline explains does not count: calls sent with
    tiny deadlines cannot make everyone else's calls skip the store.
    """

    __slots__ = (
        "backend",
        "check_multiprocess",
        "down_until",
        "fail_open",
        "lock",
        "multiprocess_error",
        "retry_after",
        "retry_interval",
        "suppressed",
        "timeout",
        "warn_at",
        "warn_interval",
    )

    def __init__(
        self,
        backend: Backend,
        *,
        timeout: float,
        on_error: str,
        retry_interval: float,
        warn_interval: float,
        retry_after: float,
    ) -> None:
        self.backend = backend
        self.timeout = timeout
        self.fail_open = on_error == "open"
        self.retry_interval = retry_interval
        self.warn_interval = warn_interval
        self.retry_after = str(max(1, math.ceil(retry_after)))
        self.down_until = 0.0
        self.warn_at = 0.0
        self.suppressed = 0
        self.lock = threading.Lock()
        # Checked on the first call: a server that is not pyservice serve says so only in the environ.
        self.check_multiprocess = not backend.shared
        self.multiprocess_error: str | None = None

    def first_call(self, environ: dict[str, Any]) -> None:
        """The memory backend under several processes: each would keep its own keys, so refuse every call."""
        if self.check_multiprocess:
            if environ.get("wsgi.multiprocess"):
                self.multiprocess_error = (
                    "pyservice-idempotency: the memory backend keeps keys per process and the server runs"
                    " several worker processes (environ['wsgi.multiprocess'] is true), so a retry that"
                    " reaches another worker would run again; use backend 'redis'"
                )
                logger.error("%s", self.multiprocess_error)
            self.check_multiprocess = False
        if self.multiprocess_error is not None:
            raise RuntimeError(self.multiprocess_error)

    def deadline(self, context: ServiceContext, now: float) -> float:
        """When a round trip of this call must have answered: ``timeout`` from now, or the call's deadline."""
        bound = now + self.timeout
        deadline = context.deadline
        return deadline if deadline is not None and deadline < bound else bound

    def failed(self, exc: BackendUnavailable, operation: str, what: str) -> None:
        """Record a failure of the store: leave it alone for a while, warn at most once per interval."""
        now = time.monotonic()
        with self.lock:
            if not exc.late:
                self.down_until = now + self.retry_interval
            if now < self.warn_at:
                self.suppressed += 1
                return
            self.warn_at = now + self.warn_interval
            suppressed, self.suppressed = self.suppressed, 0
        logger.warning(
            "idempotency store unavailable (%s) in %s, %s; %d more failures since the last warning",
            exc,
            operation,
            what,
            suppressed,
        )

    def warn(self, message: str, *args: Any) -> None:
        """Log a warning about a call, at most once per interval (the others are counted)."""
        now = time.monotonic()
        with self.lock:
            if now < self.warn_at:
                self.suppressed += 1
                return
            self.warn_at = now + self.warn_interval
        logger.warning(message, *args)


class Policy:
    """How one operation is protected, resolved once at start-up."""

    __slots__ = (
        "max_answer_size",
        "max_key_length",
        "operation",
        "prefix",
        "required",
        "running_ttl",
        "transient",
        "ttl",
    )

    def __init__(
        self,
        operation: str,
        prefix: str,
        *,
        required: bool,
        ttl: float,
        running_ttl: float,
        max_key_length: int,
        max_answer_size: int,
        transient: frozenset[str],
    ) -> None:
        self.operation = operation
        self.prefix = prefix
        self.required = required
        self.ttl = ttl
        self.running_ttl = running_ttl
        self.max_key_length = max_key_length
        self.max_answer_size = max_answer_size
        self.transient = transient

    def storable(self, kind: str, status: int, name: str) -> bool:
        """Whether an error answer is kept and replayed: a whitelisted exception that is not "try later".

        A 5xx, 408 or 429 says the call may succeed if sent again
        (``DatabaseUnavailable``, ``RequestThrottled``): its key is released
        instead, as are the names of ``transient``. Internal and protocol
        errors are never kept.
        """
        return kind == "exception" and status < 500 and status not in (408, 429) and name not in self.transient


def _json_default(value: Any) -> Any:
    if isinstance(value, Container):
        return value.__dict__
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def service_hook(guard: Guard, policy: Policy) -> Callable[[ServiceContext], None]:
    """The request-scope hook of one operation."""
    backend = guard.backend
    prefix = policy.prefix
    required = policy.required
    max_key_length = policy.max_key_length
    running_ttl = policy.running_ttl
    operation = policy.operation

    def idempotency(context: ServiceContext) -> None:
        raw = context.environ.get(_ENVIRON_KEY)
        if raw is None:
            if required:
                raise IdempotencyKeyRequired(
                    f"{operation} requires an Idempotency-Key header: one unique value per call, "
                    "the same on every retry of that call"
                )
            context.process_request()
            return
        if guard.check_multiprocess or guard.multiprocess_error is not None:
            guard.first_call(context.environ)
        key = parse_key(raw, max_key_length)
        if key is None:
            raise IdempotencyKeyInvalid(
                f"the Idempotency-Key must be 1 to {max_key_length} visible ASCII characters "
                f"(optionally a quoted string); got {len(raw)} characters that are not such a key"
            )
        context.idempotency_key = key  # type: ignore[attr-defined]
        request_print = fingerprint(context.body)
        if request_print is None:
            context.process_request()  # not a JSON object: the core refuses it, nothing runs
            return
        # The caller is part of the key: one caller can never replay, or block, another's answer.
        # Hashed, so neither the caller's identity nor the key is kept in the clear. caller_identity.key
        # is unambiguous: a JWT subject and an address that read alike are two callers.
        caller = context.caller_identity.key
        store_key = (
            prefix + hashlib.blake2b(f"{caller}\0{key}".encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
        )
        claim = running_record(request_print, _tokens.next())
        now = time.monotonic()
        if guard.down_until and now < guard.down_until:
            _unavailable(guard, context, None)
            return
        left = context.time_left()
        # The claim outlives the call, should its worker die mid-call, by running_ttl at least.
        ttl = running_ttl if left is None or left + 1.0 < running_ttl else left + 1.0
        try:
            existing = backend.claim(store_key, claim, ttl, guard.deadline(context, now))
        except BackendUnavailable as exc:
            guard.failed(exc, operation, "the call was run without a key" if guard.fail_open else "answered 503")
            _unavailable(guard, context, exc)
            return
        if existing is not None:
            _replay(guard, context, existing, request_print)
            return
        _run(guard, policy, context, store_key, claim, request_print)

    idempotency.__qualname__ = f"Idempotency.{operation}"
    return idempotency


def _unavailable(guard: Guard, context: ServiceContext, exc: BackendUnavailable | None) -> None:
    if guard.fail_open:
        context.annotate(idempotency="unavailable")
        context.process_request()
        return
    context.annotate(idempotency="unavailable")
    context.response_headers.append(("Retry-After", guard.retry_after))
    raise IdempotencyUnavailable(
        "the idempotency store does not answer; the call was not run, send it again with the same key"
    ) from exc


def _replay(guard: Guard, context: ServiceContext, existing: bytes, request_print: str) -> None:
    record = read_record(existing)
    if record is not None and not hmac.compare_digest(record.fingerprint, request_print):
        context.annotate(idempotency="reused")
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; use a new key for a new request"
        )
    if record is None or record.state == RUNNING:
        # Unreadable (another format's): as good as running, the safe answer until it expires.
        context.annotate(idempotency="in_use")
        context.response_headers.append(("Retry-After", guard.retry_after))
        raise IdempotencyKeyInUse("a call with this Idempotency-Key is still running; retry after Retry-After")
    if record.state != DONE:
        context.annotate(idempotency="not_kept")
        raise IdempotencyAnswerNotKept(
            f"the call with this Idempotency-Key completed (HTTP {record.status}), and its answer was too large to keep"
        )
    context.annotate(idempotency="replayed")
    context.status = record.status
    headers = context.response_headers
    headers.extend(record.headers)
    headers.append(_REPLAYED)
    context.response_body = record.body


def _run(
    guard: Guard, policy: Policy, context: ServiceContext, store_key: str, claim: bytes, request_print: str
) -> None:
    mark = len(context.response_headers)
    try:
        # Everything further in runs here, the handler and a database plugin's
        # commit included: what is stored below was committed.
        context.process_request()
        body = context.response_body
        if body is None:
            # A hook further in answered without encoding; the core would encode the same way.
            body = context.response_body = orjson.dumps(context.response.__dict__, default=_json_default)
    except Exception as exc:
        answer = context.service.describe_error(exc, context)
        if policy.storable(answer.kind, answer.status, answer.name):
            headers = [*answer.headers, *context.response_headers[mark:]]
            _store(guard, policy, context, store_key, claim, request_print, answer.status, headers, answer.body)
        else:
            _release(guard, context, store_key, claim)
        raise
    except BaseException:
        _release(guard, context, store_key, claim)
        raise
    _store(
        guard, policy, context, store_key, claim, request_print, context.status, context.response_headers[mark:], body
    )


def _store(
    guard: Guard,
    policy: Policy,
    context: ServiceContext,
    store_key: str,
    claim: bytes,
    request_print: str,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    size = len(body) + sum(len(name) + len(value) for name, value in headers)
    if size > policy.max_answer_size:
        record = too_large_record(request_print, status)
        outcome = "not_kept"
        guard.warn(
            "idempotency: the answer of %s (%d bytes) is over max_answer_size (%d): a retry gets 409"
            " IdempotencyAnswerNotKept instead of a replay",
            policy.operation,
            size,
            policy.max_answer_size,
        )
    else:
        record = done_record(request_print, status, headers, body)
        outcome = "stored"
    # Not bounded by the call's deadline: the work is done and committed, and
    # this record is what keeps the caller's retry from doing it again. One
    # round trip of at most `timeout`.
    try:
        written = guard.backend.complete(store_key, claim, record, policy.ttl, time.monotonic() + guard.timeout)
    except BackendUnavailable as exc:
        guard.failed(exc, policy.operation, "the answer was sent but not stored")
        context.annotate(idempotency="store_failed")
        return
    if not written:
        guard.warn(
            "idempotency: the claim of a call of %s expired before it ended (running_ttl too short for it?);"
            " its answer was not stored",
            policy.operation,
        )
        outcome = "claim_expired"
    context.annotate(idempotency=outcome)


def _release(guard: Guard, context: ServiceContext, store_key: str, claim: bytes) -> None:
    try:
        guard.backend.release(store_key, claim, time.monotonic() + guard.timeout)
    except BackendUnavailable as exc:
        # The claim expires on its own after running_ttl; until then a retry is answered 409.
        guard.failed(exc, context.operation, "a failed call's key stays claimed until running_ttl")
    context.annotate(idempotency="released")
