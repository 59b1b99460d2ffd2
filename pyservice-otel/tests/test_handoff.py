"""context.traceparent: one trace id for the call, whichever plugin gives it first."""

from __future__ import annotations

import pyservice
import pyservice.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
FIRST_SPAN = "00f067aa0ba902b7"
CALLER_SPAN = "b7ad6b7169203331"
API = {"name": "things", "operations": ["get_thing"]}


class First(pyservice.Plugin):
    """Stands for a plugin listed before otel that gives the call a trace id (pyservice-logging)."""

    name = "first"

    def setup(self, owner):
        def first(context):
            if context.traceparent is None:
                context.traceparent = f"00-{TRACE_ID}-{FIRST_SPAN}-00"
            context.process_request()

        owner.plugin("request", name=self.name)(first)


class Last(pyservice.Plugin):
    """Stands for a plugin listed after otel: it records the traceparent it finds."""

    name = "last"
    seen: list = []

    def setup(self, owner):
        def last(context):
            Last.seen.append(context.traceparent)
            context.process_request()

        owner.plugin("request", name=self.name)(last)


def serve(plugins, tracer_provider=None, otel=None):
    config = otel.config() if tracer_provider is None else {**otel.config(), "tracer_provider": tracer_provider}
    service = pyservice.Service(
        **API, plugins={name: config if name == "otel" else {} for name in plugins}, available_plugins=[First, Last]
    )
    service.operation("get_thing")(lambda request, response, context: None)
    return pyservice.testing.client_for(service, API)


def test_the_span_continues_the_trace_a_plugin_listed_first_gave_the_call(otel):
    serve(["first", "otel"], otel=otel).get_thing()
    span = otel.span("SERVER")
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == FIRST_SPAN


def test_a_trace_started_by_the_first_plugin_is_sampled_by_the_tracers_sampler(otel):
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(otel.exporter))
    serve(["first", "otel"], tracer_provider=provider, otel=otel).get_thing()
    assert otel.spans() == []


def test_a_trace_started_by_the_first_plugin_is_recorded_whatever_its_flags_say(otel):
    # The first plugin's flags are 00: it samples nothing; the tracer's sampler (always on) decides.
    serve(["first", "otel"], otel=otel).get_thing()
    assert otel.span("SERVER").context.trace_flags.sampled


def test_with_an_incoming_trace_the_span_keeps_the_callers_parent(otel):
    headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    serve(["first", "otel"], otel=otel).call("get_thing", {}, headers=headers)
    span = otel.span("SERVER")
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN


def test_a_plugin_listed_after_otel_finds_the_server_spans_traceparent(otel):
    Last.seen.clear()
    serve(["otel", "last"], otel=otel).get_thing()
    context = otel.span("SERVER").context
    assert Last.seen == [f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"]


def test_a_client_call_continues_the_trace_a_plugin_listed_first_gave_it(otel):
    service = pyservice.Service(**API)
    service.operation("get_thing")(lambda request, response, context: None)
    client = pyservice.testing.client_for(
        service, {**API, "plugins": {"first": {}, "otel": otel.config()}}, available_plugins=[First]
    )
    client.get_thing()
    call = next(span for span in otel.spans() if f"{span.parent.span_id:016x}" == FIRST_SPAN)
    assert f"{call.context.trace_id:032x}" == TRACE_ID
