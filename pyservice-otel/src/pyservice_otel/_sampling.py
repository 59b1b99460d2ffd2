"""The sampling decision made before a span is made, so a sampled-out call costs only its context.

The OpenTelemetry SDK's ``Tracer.start_span`` decides with the sampler and,
for a dropped span, returns a ``NonRecordingSpan``; most of what it costs is
the work around that decision. :class:`SpanStarter` asks the tracer's own
sampler first, with the same arguments the SDK would give it, and for a
dropped span builds the same ``NonRecordingSpan`` itself (a fresh span id
from the tracer's id generator, the sampler's ``tracestate``, the
random-trace-id flag as the SDK sets it). A span the sampler records
(``RECORD_AND_SAMPLE`` or ``RECORD_ONLY``) is made by the SDK as before:
the trace id the decision was made for, and the decision itself when the
sampler had to be called for it, are handed to the SDK's ``start_span``
through the tracer's sampler and id generator, so the sampler is called
once per span, and a trace-id ratio decides on the trace id the span gets.

Only for the SDK's own ``Tracer`` (the plugin's own, or one an application's
SDK provider made); another implementation's tracer starts its spans itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    get_current_span,
)
from opentelemetry.util.types import Attributes

__all__ = ["SpanStarter", "span_starter"]

#: ``(name, parent context, kind, attributes) -> span``: what the hooks call to start a span.
SpanStarter = Callable[[str, "Context | None", SpanKind, Mapping[str, Any]], Span]

# The W3C random-trace-id flag (02), which API releases before 1.39 do not name; 0 there, as the SDK sets none.
_RANDOM_TRACE_ID = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_NOT_SAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | _RANDOM_TRACE_ID)


#: A pending decision the sampler itself is to make (for the pending trace id).
_ASK: Any = object()


class _Pending(threading.local):
    """The decision made for the span the SDK is about to make on this thread."""

    trace_id: int = 0
    result: Any = None


class _DecidedSampler(Sampler):
    """The tracer's sampler, which answers the decision already made for the span being started.

    Any other call (the hand-off asking for a root decision, a span the
    plugin does not start) goes to the sampler itself.
    """

    def __init__(self, sampler: Any, pending: _Pending) -> None:
        self.sampler = sampler
        self._pending = pending

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> Any:
        """The decision made for this span, or the sampler's own."""
        pending = self._pending
        result = pending.result
        if result is not None and pending.trace_id == trace_id:
            pending.result = None
            if result is not _ASK:
                return result
        if trace_state is None:
            # As the SDK calls it: a sampler written without the trace_state parameter works too.
            return self.sampler.should_sample(parent_context, trace_id, name, kind, attributes, links)
        return self.sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        """The sampler's own description."""
        return str(self.sampler.get_description())


class _DecidedIds(IdGenerator):
    """The tracer's id generator, which gives a root span the trace id its decision was made for."""

    def __init__(self, generator: Any, pending: _Pending) -> None:
        self.generator = generator
        self._pending = pending

    def generate_span_id(self) -> int:
        """A new span id, from the generator."""
        return int(self.generator.generate_span_id())

    def is_trace_id_random(self) -> bool:
        """Whether the generator's trace ids are random (the W3C flag)."""
        method = getattr(self.generator, "is_trace_id_random", None)
        return bool(method()) if method is not None else False

    def generate_trace_id(self) -> int:
        """The trace id of the pending decision, or a new one."""
        pending = self._pending
        if pending.result is not None:
            return pending.trace_id
        return int(self.generator.generate_trace_id())


#: ``drops(parent span context, trace id)``: whether the sampler drops the span, without asking it.
_Drops = Callable[[SpanContext, int], bool]


def _drops_of(sampler: Any) -> _Drops | None:
    """What the SDK's own samplers decide, as a plain function; ``None`` for any other sampler.

    The SDK's ``StaticSampler`` (``ALWAYS_OFF``/``ALWAYS_ON``),
    ``TraceIdRatioBased`` and ``ParentBased`` (with such delegates) decide
    from the parent's flags and the trace id alone, and a dropped span's
    ``tracestate`` is its parent's: the same decision, without the two
    context look-ups and the result object they make per span. A subclass
    that overrides ``should_sample`` is asked itself.
    """
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler, TraceIdRatioBased

    method = getattr(type(sampler), "should_sample", None)
    if method is StaticSampler.should_sample:
        dropped = sampler._decision is Decision.DROP

        def static_drops(found: SpanContext, trace_id: int) -> bool:
            return dropped

        static_drops.always = dropped  # type: ignore[attr-defined]
        return static_drops
    if method is TraceIdRatioBased.should_sample:
        limit = sampler.TRACE_ID_LIMIT

        def ratio_drops(found: SpanContext, trace_id: int) -> bool:
            return not trace_id & limit < sampler.bound

        return ratio_drops
    if method is ParentBased.should_sample:
        delegates = [
            _drops_of(sampler._root),
            _drops_of(sampler._remote_parent_sampled),
            _drops_of(sampler._remote_parent_not_sampled),
            _drops_of(sampler._local_parent_sampled),
            _drops_of(sampler._local_parent_not_sampled),
        ]
        if any(delegate is None for delegate in delegates):
            return None
        root, remote_sampled, remote_not_sampled, local_sampled, local_not_sampled = (
            delegate for delegate in delegates if delegate is not None
        )

        def parent_based_drops(found: SpanContext, trace_id: int) -> bool:
            if not found.is_valid:
                return root(found, trace_id)
            if found.is_remote:
                if found.trace_flags.sampled:
                    return remote_sampled(found, trace_id)
                return remote_not_sampled(found, trace_id)
            if found.trace_flags.sampled:
                return local_sampled(found, trace_id)
            return local_not_sampled(found, trace_id)

        return parent_based_drops
    return None


def span_starter(tracer: Tracer) -> SpanStarter:
    """How the hooks start spans with ``tracer``: deciding first when it is the SDK's, else ``start_span``.

    ``tracer`` must be the plugin's own (from ``get_tracer``): with the SDK's
    its sampler and id generator are wrapped (see the module's docs).
    """
    from opentelemetry.sdk.trace import Tracer as SDKTracer
    from opentelemetry.sdk.trace.sampling import Decision

    try:
        from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics

        span_metrics_off = isinstance(getattr(tracer, "_tracer_metrics", None), NoOpTracerMetrics)
    except ImportError:  # SDK releases before 1.39 count no spans
        span_metrics_off = True
    if type(tracer) is not SDKTracer or not span_metrics_off or isinstance(tracer.sampler, _DecidedSampler):
        # Not the SDK's tracer, or the SDK's own span metrics are on: they count every span it starts.
        return tracer.start_span
    # SDK releases before 1.39 have no tracer configurator: their tracers are always enabled.
    is_enabled: Callable[[], bool] = getattr(tracer, "_is_enabled", lambda: True)
    pending = _Pending()
    sampler = tracer.sampler
    ids = tracer.id_generator
    tracer.sampler = _DecidedSampler(sampler, pending)
    tracer.id_generator = _DecidedIds(ids, pending)
    should_sample = sampler.should_sample
    generate_trace_id = ids.generate_trace_id
    generate_span_id = ids.generate_span_id
    is_trace_id_random: Callable[[], bool] = getattr(ids, "is_trace_id_random", lambda: False)
    start_span = tracer.start_span
    drop = Decision.DROP
    no_links: tuple[Link, ...] = ()
    try:
        drops = _drops_of(sampler)
    except AttributeError:  # another SDK version's samplers keep other fields: ask them
        drops = None
    # A sampler that drops every span (ALWAYS_OFF): no decision to make per span.
    always_dropped = drops is not None and getattr(drops, "always", False)
    # Whether a root span's trace id is random (the W3C flag) is a property of the generator's kind.
    random_roots = is_trace_id_random()
    flags_of_dropped = _NOT_SAMPLED_RANDOM if random_roots else _NOT_SAMPLED

    def start(name: str, parent: Context | None, kind: SpanKind, attributes: Mapping[str, Any]) -> Span:
        if not is_enabled():
            return start_span(name, parent, kind, attributes)
        found = get_current_span(parent).get_span_context()
        if found.is_valid:
            trace_id = found.trace_id
            if always_dropped or (drops is not None and drops(found, trace_id)):
                flags = _NOT_SAMPLED_RANDOM if found.trace_flags & _RANDOM_TRACE_ID else _NOT_SAMPLED
                # A dropped span's tracestate is its parent's, as the SDK's samplers give it.
                return NonRecordingSpan(SpanContext(trace_id, generate_span_id(), False, flags, found.trace_state))
        else:
            trace_id = generate_trace_id()
            if always_dropped or (drops is not None and drops(found, trace_id)):
                return NonRecordingSpan(SpanContext(trace_id, generate_span_id(), False, flags_of_dropped, None))
        # One of the SDK's samplers keeps the span: the SDK asks it, for the trace id it was read for.
        result = _ASK if drops is not None else should_sample(parent, trace_id, name, kind, attributes, no_links)
        if result is not _ASK and result.decision is drop:
            random = bool(found.trace_flags & _RANDOM_TRACE_ID) if found.is_valid else random_roots
            flags = _NOT_SAMPLED_RANDOM if random else _NOT_SAMPLED
            return NonRecordingSpan(SpanContext(trace_id, generate_span_id(), False, flags, result.trace_state))
        # Recorded: the SDK makes the span, with this decision and this trace id.
        pending.trace_id = trace_id
        pending.result = result
        try:
            return start_span(name, parent, kind, attributes)
        finally:
            pending.result = None

    return start
