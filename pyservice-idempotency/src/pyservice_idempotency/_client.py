"""The client side: one key per call, the same on every attempt; a 409 "in use" waited out."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from pyservice import ClientContext

__all__ = ["HEADER", "add_key", "wait_in_use"]

#: The request header of the IETF httpapi draft.
HEADER = "Idempotency-Key"
_LOWER = HEADER.lower()


def add_key(context: ClientContext) -> None:
    """The request-scope hook: send the application's key, or a new UUID, on every attempt of the call.

    It runs once per call, outside the client's retry loop, so every
    attempt (retries, hedged copies) carries the same key.
    """
    headers = context.headers
    key = headers.get(HEADER)
    if key is None:
        for name, value in headers.items():
            if name.lower() == _LOWER:  # the application's own spelling of the header
                key = value
                break
        else:
            # A version 4 UUID, as the draft recommends: 122 random bits.
            key = headers[HEADER] = str(uuid.uuid4())
    context.idempotency_key = key  # type: ignore[attr-defined]
    context.process_request()


def wait_in_use(retries: int, max_wait: float) -> Callable[[ClientContext], None]:
    """The attempt-scope hook: a 409 with ``Retry-After`` means the first call with the key still runs.

    The attempt is sent again after ``Retry-After`` (plus up to 10% jitter)
    through the client's own loop (``context.retry_after``), at most
    ``retries`` times, never past the call's deadline or ``max_wait``
    seconds after the first 409.
    """

    def idempotency_in_use(context: Any) -> None:
        context.process_request()
        if context.status != 409:
            return
        answer = context.http_response
        value = answer.headers.get("Retry-After") if answer is not None else None
        if value is None or not value.strip().isdigit():
            return  # a 409 of the application's own: its answer
        waits: int = getattr(context, "idempotency_waits", 0)
        if waits >= retries:
            return
        now = time.monotonic()
        if waits == 0:
            context.idempotency_first_409 = now
        delay = int(value) * (1 + random.uniform(0, 0.1))  # noqa: S311 - spreading, not security
        limit = context.idempotency_first_409 + max_wait
        deadline = context.deadline
        if deadline is not None and deadline < limit:
            limit = deadline
        if now + delay >= limit:
            return
        context.idempotency_waits = waits + 1
        context.retry_after = delay

    return idempotency_in_use
