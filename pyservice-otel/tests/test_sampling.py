"""Sampled-out calls: decided before a span is made, and still carrying their trace context on."""

from __future__ import annotations

import threading

import pyservice
import pyservice.testing
from opentelemetry.propagate import get_global_textmap
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, get_current_span
from pyservice_otel._sampling import span_starter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
API = {"name": "things", "operations": ["get_thing"]}


class Seen:
    """What the handler saw of its call's trace context."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        self.spans: list = []
        self.recording: list[bool] = []
        self.injected: list[dict[str, str]] = []


def serve(otel, tracer_provider, seen: Seen):
    service = pyservice.Service(**API, plugins={"otel": {**otel.config(), "tracer_provider": tracer_provider}})

    @service.operation("get_thing")
    def get_thing(request, response, context):
        seen.traceparents.append(context.traceparent)
        seen.spans.append(get_current_span())
        seen.recording.append(get_current_span().is_recording())
        # What a client called from the handler sends on: the global propagator reads the current context.
        headers: dict[str, str] = {}
        get_global_textmap().inject(headers)
        seen.injected.append(headers)

    return pyservice.testing.client_for(service, API)


def provider_with(sampler, *processors) -> TracerProvider:
    provider = TracerProvider(sampler=sampler)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


class Ended(SpanProcessor):
    """Keeps every span that ends, sampled or only recorded (an exporter sees only sampled ones)."""

    def __init__(self) -> None:
        self.spans: list = []

    def on_end(self, span) -> None:
        self.spans.append(span)


class Counting(Sampler):
    """Samples the trace ids whose last bit is 1, and counts what it is asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.sampled: list[int] = []
        self.lock = threading.Lock()

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        with self.lock:
            self.asked.append(trace_id)
        if trace_id & 1:
            with self.lock:
                self.sampled.append(trace_id)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "Counting"


class RecordOnly(Sampler):
    # Written without trace_state, as the SDK's Sampler allowed: called as the SDK calls it.
    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
        return SamplingResult(Decision.RECORD_ONLY, attributes)

    def get_description(self) -> str:
        return "RecordOnly"


def test_a_sampled_out_call_makes_a_not_sampled_span_current_for_its_handler(otel):
    seen = Seen()
    serve(otel, provider_with(ALWAYS_OFF, SimpleSpanProcessor(otel.exporter)), seen).get_thing()
    (span,) = seen.spans
    found = span.get_span_context()
    assert found.is_valid
    assert not found.trace_flags.sampled
    assert seen.recording == [False]
    assert otel.spans() == []


def test_a_sampled_out_call_hands_its_own_span_as_context_traceparent(otel):
    seen = Seen()
    serve(otel, provider_with(ALWAYS_OFF), seen).get_thing()
    found = seen.spans[0].get_span_context()
    assert seen.traceparents == [f"00-{found.trace_id:032x}-{found.span_id:016x}-{found.trace_flags:02x}"]
    assert seen.traceparents[0].endswith("-00") or seen.traceparents[0].endswith("-02")


def test_a_call_its_caller_sampled_out_continues_the_callers_trace_and_tracestate(otel):
    seen = Seen()
    client = serve(otel, provider_with(ParentBased(ALWAYS_OFF), SimpleSpanProcessor(otel.exporter)), seen)
    headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-00", "tracestate": "vendor=value"}
    client.call("get_thing", {}, headers=headers)
    found = seen.spans[0].get_span_context()
    assert f"{found.trace_id:032x}" == TRACE_ID
    assert f"{found.span_id:016x}" != CALLER_SPAN
    assert not found.trace_flags.sampled
    assert found.trace_state.get("vendor") == "value"
    assert otel.spans() == []


def test_a_sampled_out_call_sends_a_valid_not_sampled_traceparent_and_the_tracestate_on(otel):
    seen = Seen()
    client = serve(otel, provider_with(ParentBased(ALWAYS_OFF)), seen)
    headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-00", "tracestate": "vendor=value"}
    client.call("get_thing", {}, headers=headers)
    (sent,) = seen.injected
    found = seen.spans[0].get_span_context()
    assert sent["traceparent"] == f"00-{TRACE_ID}-{found.span_id:016x}-00"
    assert sent["tracestate"] == "vendor=value"
    assert seen.traceparents == [sent["traceparent"]]


def test_a_call_its_caller_sampled_is_recorded_under_the_default_sampler(otel):
    seen = Seen()
    client = serve(otel, provider_with(ParentBased(ALWAYS_OFF), SimpleSpanProcessor(otel.exporter)), seen)
    client.call("get_thing", {}, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})
    span = otel.span("SERVER")
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN


def test_a_record_only_sampler_gets_a_recording_span_that_is_not_sampled(otel):
    seen = Seen()
    ended = Ended()
    serve(otel, provider_with(RecordOnly(), ended), seen).get_thing()
    assert seen.recording == [True]
    assert not seen.spans[0].get_span_context().trace_flags.sampled
    (span,) = ended.spans
    assert span.attributes["rpc.response.status_code"] == "200"
    assert seen.traceparents[0].endswith(f"-{span.context.span_id:016x}-{span.context.trace_flags:02x}")


def test_the_sampler_is_asked_once_per_call_and_a_recorded_span_has_the_trace_id_it_was_asked_about(otel):
    sampler = Counting()
    seen = Seen()
    client = serve(otel, provider_with(sampler, SimpleSpanProcessor(otel.exporter)), seen)
    for _ in range(40):
        client.get_thing()
    assert len(sampler.asked) == 40
    assert sorted(span.context.trace_id for span in otel.spans()) == sorted(sampler.sampled)
    assert [int(traceparent[3:35], 16) for traceparent in seen.traceparents] == sampler.asked


def test_a_trace_id_ratio_sampler_decides_on_the_trace_id_the_span_gets(otel):
    sampler = TraceIdRatioBased(0.5)
    seen = Seen()
    client = serve(otel, provider_with(sampler, SimpleSpanProcessor(otel.exporter)), seen)
    for _ in range(60):
        client.get_thing()
    recorded = {span.context.trace_id for span in otel.spans()}
    for span in seen.spans:
        found = span.get_span_context()
        expected = found.trace_id & sampler.TRACE_ID_LIMIT < sampler.bound
        assert found.trace_flags.sampled == expected
        assert (found.trace_id in recorded) == expected
    assert 0 < len(recorded) < 60


def test_a_sampler_subclass_that_overrides_should_sample_is_asked_for_every_call(otel):
    class Mine(ParentBased):
        asked = 0

        def should_sample(self, *args, **kwargs):
            Mine.asked += 1
            return super().should_sample(*args, **kwargs)

    serve(otel, provider_with(Mine(ALWAYS_OFF)), Seen()).get_thing()
    assert Mine.asked == 1


def test_a_sampled_out_call_still_records_its_metrics(otel):
    serve(otel, provider_with(ALWAYS_OFF), Seen()).get_thing()
    (point,) = otel.points("rpc.server.call.duration")
    assert point.count == 1
    assert point.attributes["rpc.response.status_code"] == "200"


def test_spans_started_on_many_threads_each_get_their_own_decision():
    sampler = Counting()
    ended = Ended()
    tracer = provider_with(sampler, ended).get_tracer("test")
    start = span_starter(tracer)
    made: list = []
    lock = threading.Lock()

    def work() -> None:
        mine = []
        for _ in range(300):
            span = start("op", None, SpanKind.SERVER, {"rpc.method": "things/op"})
            span.end()
            mine.append(span.get_span_context())
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sampler.asked) == len(made) == 2400
    for found in made:
        assert found.trace_flags.sampled == bool(found.trace_id & 1)
    assert sorted(span.context.trace_id for span in ended.spans) == sorted(sampler.sampled)


def test_a_tracer_not_from_the_sdk_starts_its_own_spans():
    from opentelemetry.trace import NoOpTracer

    tracer = NoOpTracer()
    assert span_starter(tracer) == tracer.start_span


def client_seeing_headers(otel, tracer_provider):
    service = pyservice.Service(**API)
    seen: list[tuple[str | None, str | None]] = []

    @service.plugin("request")
    def look(context):
        seen.append((context.environ.get("HTTP_TRACEPARENT"), context.environ.get("HTTP_TRACESTATE")))
        context.process_request()

    service.operation("get_thing")(lambda request, response, context: None)
    config = {**otel.config(), "tracer_provider": tracer_provider}
    return pyservice.testing.client_for(service, {**API, "plugins": {"otel": config}}), seen


def test_a_client_call_in_a_sampled_out_trace_sends_its_trace_id_and_tracestate_not_sampled(otel):
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState, use_span

    client, seen = client_seeing_headers(
        otel, provider_with(ParentBased(ALWAYS_OFF), SimpleSpanProcessor(otel.exporter))
    )
    caller = SpanContext(
        int(TRACE_ID, 16), int(CALLER_SPAN, 16), True, TraceFlags(0), TraceState([("vendor", "value")])
    )
    with use_span(NonRecordingSpan(caller)):
        client.get_thing()
    ((traceparent, tracestate),) = seen
    assert traceparent is not None
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert span_id != CALLER_SPAN
    assert tracestate == "vendor=value"
    assert otel.spans() == []


def test_a_sampled_out_client_call_still_records_its_metrics(otel):
    client, seen = client_seeing_headers(otel, provider_with(ALWAYS_OFF))
    client.get_thing()
    (point,) = otel.points("rpc.client.call.duration")
    assert point.count == 1
    assert point.attributes["rpc.response.status_code"] == "200"
    assert seen[0][0] is not None


def test_other_tracers_of_the_provider_use_its_sampler_as_they_did(otel):
    sampler = Counting()
    provider = provider_with(sampler, SimpleSpanProcessor(otel.exporter))
    serve(otel, provider, Seen()).get_thing()
    asked = len(sampler.asked)
    provider.get_tracer("application").start_span("own").end()
    assert len(sampler.asked) == asked + 1
    assert provider.sampler is sampler
