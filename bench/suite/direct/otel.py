"""The otel plugin's work done directly with the OpenTelemetry SDK, and the plugin measured against it.

What one call of the function :func:`build` returns does, and nothing else:
the SDK's tracer starts a SERVER span with the attributes the plugin gives
a span when it starts (the RPC call attributes), sets the network attributes
and the ones the plugin sets when the call ends (status, sizes), and ends
it, with the same tracer provider (one ``SimpleSpanProcessor`` to an
exporter that drops what it gets, so both sides pay the same export).
:func:`build_measured` adds the four measurements the plugin records per
call (duration, request and response size, in-flight up and down) on an SDK
meter provider.

The issue's targets, which :func:`main` checks: with a no-op or a
sampled-out tracer the plugin adds under 2 µs per call; a recorded span
costs at most 2x what the SDK costs for the same span.

Use::

    span = build(provider)
    span()  # one span, started and ended

Run from ``bench/``: ``python -m suite.direct.otel`` (about a minute).
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = [
    "ATTRIBUTES",
    "DiscardExporter",
    "build",
    "build_measured",
    "build_sampled_out",
    "build_sampled_out_by_parent",
    "main",
]

SERVICE, OPERATION = "bench", "echo"
#: What the plugin gives the span: at start, from the environ, and at the end.
ATTRIBUTES = {
    "rpc.system.name": "pyservice",
    "rpc.system": "pyservice",
    "rpc.service": SERVICE,
    "rpc.method": f"{SERVICE}/{OPERATION}",
}
NETWORK = {
    "network.protocol.name": "http",
    "network.transport": "tcp",
    "network.peer.address": "127.0.0.1",
    "client.address": "127.0.0.1",
    "network.peer.port": 50000,
    "network.protocol.version": "1.1",
    "server.address": "127.0.0.1",
    "server.port": 8080,
}
ENDING = {"http.response.status_code": 200, "rpc.response.status_code": "200", "rpc.request.size": 13}


class DiscardExporter(SpanExporter):
    """Takes spans and drops them: the export costs the same on both sides and nothing more."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def build(provider: Any) -> Callable[[], None]:
    """One SERVER span with the plugin's attributes, started and ended by the SDK directly."""
    from opentelemetry.trace import SpanKind

    tracer = provider.get_tracer("direct")
    name = ATTRIBUTES["rpc.method"]
    kind = SpanKind.SERVER

    def span() -> None:
        started = tracer.start_span(name, None, kind, ATTRIBUTES)
        started.set_attributes(NETWORK)
        started.set_attributes({**ENDING, "rpc.response.size": 13})
        started.end()

    return span


def build_sampled_out(provider: Any) -> Callable[[], None]:
    """A span a sampler drops, started, made the current one (for the calls made inside), and let go.

    The least a tracing hook does for a sampled-out call that may call other
    services: the SDK's sampling decision, and the context attached and
    detached so those calls carry the decision on.
    """
    from opentelemetry import context as context_api
    from opentelemetry.trace import SpanKind, set_span_in_context

    tracer = provider.get_tracer("direct")
    name = ATTRIBUTES["rpc.method"]
    kind = SpanKind.SERVER
    attach, detach = context_api.attach, context_api.detach

    def span() -> None:
        started = tracer.start_span(name, None, kind, ATTRIBUTES)
        detach(attach(set_span_in_context(started)))

    return span


#: A caller's trace context that says "not sampled": a ParentBased sampler (the SDK's default) drops the span.
NOT_SAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def build_sampled_out_by_parent(provider: Any) -> Callable[[], None]:
    """:func:`build_sampled_out` for a call whose caller sent a not-sampled ``traceparent``.

    The trace context read from the request's headers with the global
    propagator, the span started in it (the SDK's default sampler,
    ``ParentBased(ALWAYS_ON)``, drops it as its parent was dropped), made
    current and let go.
    """
    from opentelemetry import context as context_api
    from opentelemetry.propagate import get_global_textmap
    from opentelemetry.trace import SpanKind, set_span_in_context

    tracer = provider.get_tracer("direct")
    name = ATTRIBUTES["rpc.method"]
    kind = SpanKind.SERVER
    attach, detach = context_api.attach, context_api.detach
    headers = {"traceparent": NOT_SAMPLED_PARENT}

    def span() -> None:
        parent = get_global_textmap().extract(headers)
        started = tracer.start_span(name, parent, kind, ATTRIBUTES)
        detach(attach(set_span_in_context(started, parent)))

    return span


def build_measured(provider: Any, meter_provider: Any) -> Callable[[], None]:
    """:func:`build`'s span, and the call's measurements recorded on ``meter_provider``."""
    span = build(provider)
    meter = meter_provider.get_meter("direct")
    duration = meter.create_histogram("rpc.server.call.duration", unit="s")
    request_size = meter.create_histogram("rpc.server.request.size", unit="By")
    response_size = meter.create_histogram("rpc.server.response.size", unit="By")
    active = meter.create_up_down_counter("rpc.server.active_requests")
    measured = {**ATTRIBUTES, "rpc.response.status_code": "200"}
    perf_counter = time.perf_counter

    def call() -> None:
        started = perf_counter()
        active.add(1, ATTRIBUTES)
        span()
        duration.record(perf_counter() - started, measured)
        request_size.record(13, measured)
        response_size.record(13, measured)
        active.add(-1, ATTRIBUTES)

    return call


# -- the comparison -----------------------------------------------------------

_BODY = b'{"text":"hi"}'
_ENVIRON = {
    "REQUEST_METHOD": "POST",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "CONTENT_TYPE": "application/json",
    "CONTENT_LENGTH": str(len(_BODY)),
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "127.0.0.1:8080",
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
}


# CPU time of this process, not wall time: on a machine shared with other
# work, the time the scheduler gives to others is not the plugin's.
_clock = time.process_time


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    pass


def _service(otel: dict[str, Any] | None, passthrough: bool = False) -> Any:
    import pyservice

    plugins = {"otel": otel} if otel is not None else {}
    service = pyservice.Service(name=SERVICE, operations=[OPERATION], plugins=plugins, health=None)
    if passthrough:
        # What any request-scope hook costs in the core: the floor of a plugin's hook.
        service.plugin("request")(lambda context: context.process_request())

    @service.operation(OPERATION)
    def echo(request: Any, response: Any, context: Any) -> None:
        response.text = request.text

    service.compile()
    return service.wsgi_application


def _app_case(app: Any, headers: dict[str, str] | None = None) -> Callable[[int], float]:
    import pyservice

    api = pyservice.Service(name=SERVICE, operations=[OPERATION], health=None).api
    path = api.endpoint.path_for(api.version, OPERATION)

    def batch(n: int) -> float:
        environs = []
        for _ in range(n):
            environ = dict(_ENVIRON)
            environ["PATH_INFO"] = path
            environ.update(headers or {})
            environ["wsgi.input"] = io.BytesIO(_BODY)
            environs.append(environ)
        started = _clock()
        for environ in environs:
            for _chunk in app(environ, _start_response):
                pass
        return _clock() - started

    return batch


def _direct_case(work: Callable[[], None]) -> Callable[[int], float]:
    def batch(n: int) -> float:
        started = _clock()
        for _ in range(n):
            work()
        return _clock() - started

    return batch


def _providers(sampler: Any = None) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(DiscardExporter()))
    return provider


def main(calls: int = 3000, rounds: int = 9) -> int:
    """Measure each case in interleaved rounds; print µs per call and check the issue's targets.

    Returns:
        0 when the targets hold, 1 otherwise.
    """
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    from opentelemetry.trace import NoOpTracerProvider

    recording = _providers()
    sampled_out = _providers(ALWAYS_OFF)
    parent_based = _providers()  # the SDK's default sampler: ParentBased(ALWAYS_ON)
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    no_meter = NoOpMeterProvider()
    cases = {
        "pyservice": _app_case(_service(None)),
        "pyservice + a pass-through hook": _app_case(_service(None, passthrough=True)),
        "pyservice + otel, no-op providers": _app_case(
            _service({"tracer_provider": NoOpTracerProvider(), "meter_provider": no_meter})
        ),
        # The default: OpenTelemetry's global providers, which the application has not set.
        "pyservice + otel, OpenTelemetry unset": _app_case(_service({})),
        "pyservice + otel, sampled out": _app_case(
            _service({"tracer_provider": sampled_out, "meter_provider": no_meter})
        ),
        "pyservice + otel, sampled out by caller": _app_case(
            _service({"tracer_provider": parent_based, "meter_provider": no_meter}),
            {"HTTP_TRACEPARENT": NOT_SAMPLED_PARENT},
        ),
        "pyservice + otel, recorded span": _app_case(
            _service({"tracer_provider": recording, "meter_provider": no_meter})
        ),
        "pyservice + otel, span + metrics": _app_case(
            _service({"tracer_provider": recording, "meter_provider": meters})
        ),
        "SDK: the same span": _direct_case(build(recording)),
        "SDK: a sampled-out span, made current": _direct_case(build_sampled_out(sampled_out)),
        "SDK: a caller's sampled-out span, current": _direct_case(build_sampled_out_by_parent(parent_based)),
        "SDK: the same span + measurements": _direct_case(build_measured(recording, meters)),
    }
    for batch in cases.values():
        batch(200)  # warm up: first calls compile chains, create instruments
    per_call: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(rounds):
        for label, batch in cases.items():
            per_call[label].append(batch(calls) / calls * 1e6)
    us = {label: statistics.median(values) for label, values in per_call.items()}
    core = us["pyservice"]
    print(f"{'case':<40} {'µs/call':>8} {'adds':>8} {'beyond a hook':>13}")
    for label, value in us.items():
        adds = "" if label.startswith("SDK") or label == "pyservice" else f"{value - core:8.2f}"
        if label.startswith("pyservice +"):
            adds += f" {value - us['pyservice + a pass-through hook']:8.2f}"
        print(f"{label:<40} {value:8.2f} {adds:>8}")
    checks = [
        ("no-op providers add < 2 µs", us["pyservice + otel, no-op providers"] - core < 2.0),
        ("OpenTelemetry unset adds < 2 µs", us["pyservice + otel, OpenTelemetry unset"] - core < 2.0),
        ("sampled out adds < 2 µs", us["pyservice + otel, sampled out"] - core < 2.0),
        (
            "sampled out adds < 2 µs beyond the SDK's own sampled-out span, made current",
            us["pyservice + otel, sampled out"] - core - us["SDK: a sampled-out span, made current"] < 2.0,
        ),
        ("sampled out by the caller adds < 2 µs", us["pyservice + otel, sampled out by caller"] - core < 2.0),
        (
            "sampled out by the caller adds < 2 µs beyond the SDK's own, made current",
            us["pyservice + otel, sampled out by caller"] - core - us["SDK: a caller's sampled-out span, current"]
            < 2.0,
        ),
        (
            "recorded span adds <= 2x the SDK's own span",
            us["pyservice + otel, recorded span"] - core <= 2.0 * us["SDK: the same span"],
        ),
        (
            "span + metrics adds <= 2x the SDK's own span + measurements",
            us["pyservice + otel, span + metrics"] - core <= 2.0 * us["SDK: the same span + measurements"],
        ),
    ]
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
