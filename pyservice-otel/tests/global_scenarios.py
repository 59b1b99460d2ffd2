"""Scenarios that set OpenTelemetry's global providers, each run in a fresh process by test_global.py.

A global provider can be set once per process, so these cannot share the
test process. Each prints one JSON object.
"""

from __future__ import annotations

import json
import sys

import pyservice
import pyservice.testing
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

API = {"name": "things", "operations": ["get_thing"]}


def serve(config):
    service = pyservice.Service(**API, plugins={"otel": config})
    service.operation("get_thing")(lambda request, response, context: None)
    return pyservice.testing.client_for(service, {**API, "plugins": {"otel": config}})


def application_provider():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return provider, exporter, reader


def the_applications_provider_gets_the_spans():
    provider, exporter, reader = application_provider()
    client = serve({})
    with trace.get_tracer("app").start_as_current_span("app work") as outer:
        client.get_thing()
    spans = exporter.get_finished_spans()
    app_span = outer.get_span_context().span_id
    calls = [span for span in spans if span.kind.name == "CLIENT" and span.parent.span_id == app_span]
    names = [m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    return {
        "names": sorted(span.name for span in spans),
        "one_trace": len({span.context.trace_id for span in spans}) == 1,
        "call_is_under_the_app_span": len(calls) == 1,
        "metrics": sorted(names),
        "global_is_the_apps": trace.get_tracer_provider() is provider,
    }


def the_plugins_own_provider_leaves_the_global_one_alone():
    provider, exporter, _ = application_provider()
    client = serve(
        {"tracer_provider": "sdk", "meter_provider": "sdk", "span_exporter": "none", "metric_exporter": "none"}
    )
    client.get_thing()
    return {
        "app_spans": len(exporter.get_finished_spans()),
        "global_is_the_apps": trace.get_tracer_provider() is provider,
    }


def set_global_installs_the_plugins_providers():
    client = serve(
        {
            "tracer_provider": "sdk",
            "meter_provider": "sdk",
            "span_exporter": "none",
            "metric_exporter": "none",
            "set_global": True,
        }
    )
    client.get_thing()
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider

    return {"global_is_sdk": isinstance(trace.get_tracer_provider(), SDKTracerProvider)}


def before_the_application_sets_a_provider_calls_make_no_spans():
    import time

    client = serve({})
    client.get_thing()  # the global provider is OpenTelemetry's no-op proxy
    client.get_thing()
    _, exporter, _ = application_provider()
    # The plugin looks again at most once a second: calls soon start making spans.
    deadline = time.monotonic() + 5
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        client.get_thing()
        time.sleep(0.05)
    return {"spans": sorted({span.name for span in exporter.get_finished_spans()})}


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]]()))
