"""The ``otel`` plugin: its declared config, and its setup on either side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import pyservice
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from ._client import attempt_hook, client_hook
from ._prometheus import metrics_endpoint
from ._service import service_hook
from ._telemetry import Telemetry, check_metric_exporter, check_provider, check_span_exporter

if TYPE_CHECKING:
    from pyservice import Client, Service

__all__ = ["Otel"]


def _path(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError("expected a path starting with '/'")
    return value


_TRACES = pyservice.Option(bool, True, "Make spans for the calls.")
_METRICS = pyservice.Option(bool, True, "Record the call metrics.")


class Otel(pyservice.Plugin):
    """OpenTelemetry traces and metrics for the calls of a Service or a Client.

    On a service, a SERVER span per call, continuing the caller's W3C trace
    context, and the ``rpc.server.*`` metrics. On a client, a CLIENT span per
    call with one CLIENT span per HTTP attempt under it (retries and their
    back-off as events of the call's span), the trace context sent on each
    attempt, and the ``rpc.client.*`` metrics. Spans and metrics go to the
    application's OpenTelemetry providers by default, or to providers the
    plugin builds per worker process (``tracer_provider: "sdk"``). See the
    package README for every key.

    Attributes:
        telemetry: the providers and instruments in use.
    """

    name: ClassVar[str] = "otel"
    options: ClassVar[Mapping[str, pyservice.Option]] = {
        "traces": _TRACES,
        "metrics": _METRICS,
        "tracer_provider": pyservice.Option(
            (str, TracerProvider),
            "global",
            "'global' (the application's), 'sdk' (the plugin's own), a TracerProvider or 'module:attribute'.",
            check=check_provider(TracerProvider),
        ),
        "meter_provider": pyservice.Option(
            (str, MeterProvider),
            "global",
            "'global' (the application's), 'sdk' (the plugin's own), a MeterProvider or 'module:attribute'.",
            check=check_provider(MeterProvider),
        ),
        "span_exporter": pyservice.Option(
            (str, type(None), object),
            None,
            "With an 'sdk' tracer provider: otlp, console, none, a SpanExporter or 'module:attribute'; "
            "comma-separated names for several. Null: OTEL_TRACES_EXPORTER, else otlp.",
            check=check_span_exporter,
        ),
        "metric_exporter": pyservice.Option(
            (str, type(None), object),
            None,
            "With an 'sdk' meter provider: otlp, console, none, a MetricExporter or MetricReader, or "
            "'module:attribute'. Null: OTEL_METRICS_EXPORTER, else otlp.",
            check=check_metric_exporter,
        ),
        "service_name": pyservice.Option(
            (str, type(None)), None, "With 'sdk' providers: service.name. Null: OTEL_SERVICE_NAME, else the api's name."
        ),
        "set_global": pyservice.Option(
            bool, False, "Install the plugin's 'sdk' providers as OpenTelemetry's global ones."
        ),
        "prometheus_path": pyservice.Option(
            (str, type(None)),
            None,
            "Service, with an 'sdk' meter provider: serve the metrics in Prometheus text at this GET path.",
            check=_path,
        ),
        "attempt_spans": pyservice.Option(bool, True, "Client: a span per HTTP attempt under the call's span."),
        "annotations": pyservice.Option(
            bool, True, "Put the annotations plugins leave on the call on its span, as pyservice.<name>."
        ),
    }
    operation_options: ClassVar[Mapping[str, pyservice.Option]] = {"traces": _TRACES, "metrics": _METRICS}

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.telemetry: Telemetry | None = None

    def setup(self, owner: Service | Client) -> None:
        """Resolve the providers and exporters, then register the hooks of each operation."""
        config = self.config
        key = f"plugins.{self.name}"
        path = config["prometheus_path"]
        if path is not None:
            if owner.side != "service":
                raise pyservice.ApiError(f"{key}.prometheus_path", "a client serves no path: expected null")
            if config["meter_provider"] != "sdk":
                raise pyservice.ApiError(
                    f"{key}.prometheus_path",
                    "the metrics read for Prometheus are the plugin's own: expected meter_provider 'sdk'",
                )
        # A client's api names the service it calls, not the process it runs in.
        service_name = owner.api.name if owner.side == "service" else None
        telemetry = Telemetry(config, owner.side, service_name, key, prometheus=path is not None)
        self.telemetry = telemetry
        if path is not None:
            try:
                owner.add_get_endpoint(path, metrics_endpoint(self._prometheus_reader), owner=self.name)
            except ValueError as exc:
                raise pyservice.ApiError(f"{key}.prometheus_path", str(exc)) from None
        if telemetry.known_noop:
            return  # no-op providers for good: the calls pay nothing
        for operation in owner.api.operations.values():
            op_config = self.operation_config(operation)
            if op_config is None or not (op_config["traces"] or op_config["metrics"]):
                continue
            if owner.side == "service":
                hook: Any = service_hook(owner, operation, telemetry, op_config)  # type: ignore[arg-type]
                owner.plugin("request", operations=[operation.name], name=self.name)(hook)
                continue
            per_attempt = op_config["traces"] and op_config["attempt_spans"]
            hook = client_hook(owner, operation, telemetry, op_config, propagate_here=not per_attempt)  # type: ignore[arg-type]
            owner.plugin("request", operations=[operation.name], name=self.name)(hook)
            if per_attempt:
                attempt = attempt_hook(owner, operation, telemetry)  # type: ignore[arg-type]
                owner.plugin("attempt", operations=[operation.name], name=self.name)(attempt)

    def _prometheus_reader(self) -> Any:
        telemetry = self.telemetry
        if telemetry is None:
            return None
        telemetry.instruments()  # a scrape before the first call in this worker still finds the reader
        return telemetry.prometheus

    def force_flush(self, timeout_millis: int = 30_000) -> None:
        """Export what the plugin's own (``"sdk"``) providers hold in this process now."""
        if self.telemetry is not None:
            self.telemetry.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the plugin's own (``"sdk"``) providers in this process."""
        if self.telemetry is not None:
            self.telemetry.shutdown()
