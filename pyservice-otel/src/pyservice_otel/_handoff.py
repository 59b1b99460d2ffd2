"""The call's trace id, shared with the other plugins through ``context.traceparent``.

The core's ``Context.traceparent`` holds the W3C ``traceparent`` of the
call's own span, set by the first plugin that gives the call a trace id.
This plugin sets it from the span it starts, and, when a plugin listed
before it (pyservice-logging) set it first, continues that trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags, Tracer, set_span_in_context

__all__ = ["continue_handed", "format_traceparent", "parse_traceparent", "traceparent_of"]

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The span context of a version-00 ``traceparent``, or ``None`` when it is not one."""
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match[3], 16)))


# "-01" and the like: the flags' part, made once.
_FLAGS = tuple(f"-{flags:02x}" for flags in range(256))


def traceparent_of(found: SpanContext) -> str:
    """The ``traceparent`` of a valid span context.

    Called for every traced call: bytes.hex() formats the ids faster than
    ``%032x`` does.
    """
    return ("00-" + found.trace_id.to_bytes(16, "big").hex() + "-" + found.span_id.to_bytes(8, "big").hex()) + _FLAGS[
        found.trace_flags
    ]


def format_traceparent(span: Span) -> str | None:
    """The ``traceparent`` of ``span``, or ``None`` for the invalid span of a tracer that makes none."""
    found = span.get_span_context()
    if not found.is_valid:
        return None
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{found.trace_flags:02x}"


def continue_handed(
    handed: str,
    parent: Context | None,
    current: SpanContext,
    tracer: Tracer,
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any],
) -> Context | None:
    """The parent context of a span whose call another plugin already gave a trace id.

    Args:
        handed: ``context.traceparent`` as the earlier plugin set it.
        parent: the context the span would otherwise start in (extracted
            from the request's headers), or ``None`` for the current one.
        current: the span context ``parent`` carries (invalid when none).
        tracer: the tracer the span is started with; its sampler decides
            for a trace the earlier plugin started.
        name: the span's name, for the sampler.
        kind: the span's kind, for the sampler.
        attributes: the span's first attributes, for the sampler.

    Returns:
        ``parent`` itself when it is in the same trace already (the earlier
        plugin continued the incoming trace); else a context whose parent is
        the earlier plugin's span, so the span gets its trace id. That
        trace began with this call, so it is sampled as a new trace would
        be, by the tracer's sampler, not by the flags the earlier plugin
        (which samples nothing) chose.
    """
    given = parse_traceparent(handed)
    if given is None or (current.is_valid and current.trace_id == given.trace_id):
        return parent
    sampled = _sampled_as_root(tracer, given.trace_id, name, kind, attributes)
    flags = given.trace_flags | TraceFlags.SAMPLED if sampled else given.trace_flags & ~TraceFlags.SAMPLED
    span_context = SpanContext(given.trace_id, given.span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return set_span_in_context(NonRecordingSpan(span_context), parent)


def _sampled_as_root(tracer: Tracer, trace_id: int, name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> bool:
    # The SDK's tracer keeps its sampler; another implementation decides for itself, so ask for the span.
    sampler = getattr(tracer, "sampler", None)
    if sampler is None:
        return True
    result = sampler.should_sample(None, trace_id, name, kind, attributes)
    return bool(result.decision.is_sampled())
