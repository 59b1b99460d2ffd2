"""Where spans and measurements go: the application's providers, or the plugin's own, built per process."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping
from os import getpid
from time import monotonic
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Histogram, Meter, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer, TracerProvider
from pyservice import ApiError
from pyservice.checks import import_object

from ._prometheus import PrometheusReader
from ._sampling import SpanStarter, span_starter

__all__ = ["Instruments", "Telemetry", "check_metric_exporter", "check_provider", "check_span_exporter"]

SCOPE = "pyservice_otel"

#: The explicit bucket boundaries the RPC and HTTP conventions give for durations in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: Sizes in bytes: powers of 4 from 64 B to 16 MiB.
SIZE_BUCKETS = tuple(float(64 * 4**power) for power in range(10))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyservice-otel")
    except PackageNotFoundError:  # running from a source tree
        return "0"


def check_provider(kind: type) -> Callable[[Any], Any]:
    """An Option check: ``"global"``, ``"sdk"``, a provider of ``kind``, or ``module:attribute`` naming one.

    ``module:attribute`` may name a factory of one instead; it is called once, here.
    """

    def check(value: Any) -> Any:
        if value in ("global", "sdk") or isinstance(value, kind):
            return value
        if isinstance(value, str):
            found = import_object(value)
            if not isinstance(found, kind) and callable(found):
                found = found()  # a factory of one
            if isinstance(found, kind):
                return found
            raise ValueError(
                f"expected 'module:attribute' naming a {kind.__name__} or a factory of one, "
                f"it names {type(found).__name__}"
            )
        raise ValueError(f"expected 'global', 'sdk', a {kind.__name__} or 'module:attribute'")

    return check


def _otlp_span_exporter() -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
    except ImportError:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:
            raise ValueError("'otlp' needs an OTLP exporter installed: pip install 'pyservice-otel[otlp]'") from None
    return OTLPSpanExporter()  # type: ignore[no-any-return]


def _otlp_metric_exporter() -> MetricExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPMetricExporter,
        )
    except ImportError:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPMetricExporter,
            )
        except ImportError:
            raise ValueError("'otlp' needs an OTLP exporter installed: pip install 'pyservice-otel[otlp]'") from None
    return OTLPMetricExporter()  # type: ignore[no-any-return]


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _constant(value: Any) -> Callable[[], Any]:
    def factory() -> Any:
        return value

    return factory


def _exporter_factories(
    value: Any, kind: type, builtin: Mapping[str, Callable[[], Any] | None]
) -> list[Callable[[], Any]]:
    """Resolve an exporter setting to factories; each process calls them to get its own exporters.

    Raises:
        ValueError: an unknown name, or an object of the wrong kind.
    """
    if isinstance(value, kind):
        return [_constant(value)]
    factories: list[Callable[[], Any]] = []
    for name in _names(value):
        if name in builtin:
            factory = builtin[name]
            if factory is not None:
                if factory in (_otlp_span_exporter, _otlp_metric_exporter):
                    factory()  # fails here, at start-up, when no OTLP exporter is installed
                factories.append(factory)
            continue
        if ":" not in name:
            known = ", ".join(repr(key) for key in builtin)
            raise ValueError(f"unknown exporter {name!r}: expected {known} or 'module:attribute'")
        found = import_object(name)
        if isinstance(found, kind):
            factories.append(_constant(found))
        elif callable(found):
            factories.append(found)
        else:
            raise ValueError(f"{name!r} is neither a {kind.__name__} nor a factory of one")
    return factories


_SPAN_EXPORTERS: dict[str, Callable[[], Any] | None] = {
    "otlp": _otlp_span_exporter,
    "console": ConsoleSpanExporter,
    "none": None,
}
_METRIC_EXPORTERS: dict[str, Callable[[], Any] | None] = {
    "otlp": _otlp_metric_exporter,
    "console": ConsoleMetricExporter,
    # Standard in OTEL_METRICS_EXPORTER: here the api's prometheus_path serves the text.
    "prometheus": None,
    "none": None,
}


def check_span_exporter(value: Any) -> Any:
    """An Option check for ``span_exporter``: names are resolved at start-up."""
    if value is not None:
        _exporter_factories(value, SpanExporter, _SPAN_EXPORTERS)
    return value


def check_metric_exporter(value: Any) -> Any:
    """An Option check for ``metric_exporter``: names are resolved at start-up."""
    if value is not None:
        _exporter_factories(value, (MetricExporter, MetricReader), _METRIC_EXPORTERS)  # type: ignore[arg-type]
    return value


class Instruments:
    """The tracer and the instruments of one side, in one process."""

    __slots__ = ("active", "duration", "measuring", "request_size", "response_size", "start_span", "tracer", "tracing")

    def __init__(self, tracer: Tracer, meter: Meter, side: str, tracing: bool, measuring: bool) -> None:
        self.tracer = tracer
        #: Starts the hooks' spans: the sampler asked first, a dropped span made without the SDK's span work.
        self.start_span: SpanStarter = span_starter(tracer) if tracing else tracer.start_span
        #: False when the tracer makes no spans (a no-op provider): the hooks then skip all span work.
        self.tracing = tracing
        #: False when the meter records nothing (a no-op provider): the hooks then skip the measurements.
        self.measuring = measuring
        prefix = f"rpc.{'server' if side == 'service' else 'client'}"
        direction = "incoming" if side == "service" else "outgoing"
        self.duration: Histogram = meter.create_histogram(
            f"{prefix}.call.duration",
            unit="s",
            description=f"Measures the duration of an {direction} Remote Procedure Call (RPC).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.request_size: Histogram = meter.create_histogram(
            f"{prefix}.request.size",
            unit="By",
            description="Measures the size of RPC request messages (uncompressed).",
            explicit_bucket_boundaries_advisory=SIZE_BUCKETS,
        )
        self.response_size: Histogram = meter.create_histogram(
            f"{prefix}.response.size",
            unit="By",
            description="Measures the size of RPC response messages (uncompressed).",
            explicit_bucket_boundaries_advisory=SIZE_BUCKETS,
        )
        self.active: UpDownCounter = meter.create_up_down_counter(
            f"{prefix}.active_requests",
            unit="{request}",
            description=f"Number of {direction} RPC calls in flight.",
        )


class ProcessProviders:
    """The plugin's own SDK providers for one exporter setting, shared by every Service and Client of a process.

    A service and the clients its handlers use export through the same
    providers (one OTLP connection, one ``service.name``: the first
    registrant's). Built on first use in each process and again after a
    fork, so each worker starts its own exporters.
    """

    def __init__(
        self,
        span_factories: list[Callable[[], Any]],
        metric_factories: list[Callable[[], Any]],
        set_global: bool,
        disabled: bool,
    ) -> None:
        self.span_factories = span_factories
        self.metric_factories = metric_factories
        self.set_global = set_global
        self.disabled = disabled
        self.resource_attributes: dict[str, str] | None = None
        self.wants_prometheus = False
        self.prometheus: PrometheusReader | None = None
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def register(self, resource_attributes: dict[str, str], prometheus: bool) -> None:
        """Add what one plugin instance needs; the first registrant's resource is kept."""
        if self.resource_attributes is None or (
            SERVICE_NAME not in self.resource_attributes and SERVICE_NAME in resource_attributes
        ):
            self.resource_attributes = resource_attributes
        # Plugins are set up before the first call, so the reader is there when the providers are built.
        self.wants_prometheus = self.wants_prometheus or prometheus

    def providers(self) -> tuple[TracerProvider, MeterProvider]:
        """This process's providers, built on the first call in each process."""
        if self._pid != getpid():
            with self._lock:
                if self._pid != getpid():
                    self._build()
        assert self.tracer_provider is not None
        assert self.meter_provider is not None
        return self.tracer_provider, self.meter_provider

    def _build(self) -> None:
        if self.disabled:
            self.tracer_provider, self.meter_provider = trace.NoOpTracerProvider(), metrics.NoOpMeterProvider()
            self._pid = getpid()
            return
        resource = Resource.create(self.resource_attributes or {})
        tracer_provider = SDKTracerProvider(resource=resource)
        for factory in self.span_factories:
            tracer_provider.add_span_processor(BatchSpanProcessor(factory()))
        readers: list[MetricReader] = []
        for factory in self.metric_factories:
            made = factory()
            readers.append(made if isinstance(made, MetricReader) else PeriodicExportingMetricReader(made))
        prometheus = None
        if self.wants_prometheus:
            prometheus = PrometheusReader()
            readers.append(prometheus)
        meter_provider = SDKMeterProvider(resource=resource, metric_readers=readers)
        self.tracer_provider, self.meter_provider, self.prometheus = tracer_provider, meter_provider, prometheus
        if self.set_global:
            trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
        self._pid = getpid()


#: Every Telemetry, so that a forked child drops what its parent built.
_LIVE: weakref.WeakSet[Telemetry] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for telemetry in list(_LIVE):
        telemetry.current = None


os.register_at_fork(after_in_child=_after_fork_in_child)

#: The plugin's own providers in this process, by exporter setting.
_SHARED: dict[tuple[Any, ...], ProcessProviders] = {}
_SHARED_LOCK = threading.Lock()


def _shared_key(value: Any) -> Any:
    return value if isinstance(value, str) or value is None else ("object", id(value))


class Telemetry:
    """The providers of one plugin instance, and its instruments in the current process.

    With ``"global"`` providers the application's (OpenTelemetry's global
    ones, a no-op until the application sets them) are used as they are.
    With ``"sdk"`` the plugin's own SDK providers are used
    (:class:`ProcessProviders`, shared by the plugin instances of a process
    that name the same exporters); they are never installed as the global
    ones unless ``set_global``.

    Args:
        config: the plugin's checked config.
        side: ``"service"`` or ``"client"``.
        default_service_name: ``service.name`` when neither the config nor
            ``OTEL_SERVICE_NAME`` gives one (a service's name; a client
            gives none and takes its process's service's).
        key: the dotted key of the plugin's config, for errors.
        prometheus: the metrics are to be served in Prometheus text.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        side: str,
        default_service_name: str | None,
        key: str,
        prometheus: bool = False,
    ) -> None:
        self.side = side
        self._tracer_setting = config["tracer_provider"]
        self._meter_setting = config["meter_provider"]
        self.shared: ProcessProviders | None = None
        if "sdk" in (self._tracer_setting, self._meter_setting):
            self.shared = self._shared(config, key)
            attributes: dict[str, str] = {}
            if config["service_name"]:
                attributes[SERVICE_NAME] = config["service_name"]
            elif not os.environ.get("OTEL_SERVICE_NAME") and default_service_name is not None:
                attributes[SERVICE_NAME] = default_service_name
            self.shared.register(attributes, prometheus)
        self._pid = -1
        self._lock = threading.Lock()
        self._instruments: Instruments | None = None
        #: The instruments to use in this process without asking; ``None``: call :meth:`instruments`.
        self.current: Instruments | None = None
        #: The global providers in use are OpenTelemetry's no-op ones: look again at :attr:`next_global_check`.
        self.waiting = False
        #: When (``time.monotonic()``) the hooks next call :meth:`look_for_global` while waiting.
        self.next_global_check = 0.0
        _LIVE.add(self)
        self._global_tracer: TracerProvider | None = None
        self._global_meter: MeterProvider | None = None
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None

    @staticmethod
    def _shared(config: Mapping[str, Any], key: str) -> ProcessProviders:
        disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        span_exporter = config["span_exporter"] or os.environ.get("OTEL_TRACES_EXPORTER") or "otlp"
        metric_exporter = config["metric_exporter"] or os.environ.get("OTEL_METRICS_EXPORTER") or "otlp"
        if config["tracer_provider"] != "sdk":
            span_exporter = "none"
        if config["meter_provider"] != "sdk":
            metric_exporter = "none"
        shared_key = (_shared_key(span_exporter), _shared_key(metric_exporter), config["set_global"], disabled)
        with _SHARED_LOCK:
            found = _SHARED.get(shared_key)
            if found is not None:
                return found
            span_factories: list[Callable[[], Any]] = []
            metric_factories: list[Callable[[], Any]] = []
            if not disabled:
                try:
                    span_factories = _exporter_factories(span_exporter, SpanExporter, _SPAN_EXPORTERS)
                except ValueError as exc:
                    origin = "" if config["span_exporter"] else " (from OTEL_TRACES_EXPORTER or its default)"
                    raise ApiError(f"{key}.span_exporter", f"{exc}{origin}") from None
                try:
                    metric_factories = _exporter_factories(
                        metric_exporter,
                        (MetricExporter, MetricReader),  # type: ignore[arg-type]
                        _METRIC_EXPORTERS,
                    )
                except ValueError as exc:
                    origin = "" if config["metric_exporter"] else " (from OTEL_METRICS_EXPORTER or its default)"
                    raise ApiError(f"{key}.metric_exporter", f"{exc}{origin}") from None
            found = _SHARED[shared_key] = ProcessProviders(
                span_factories, metric_factories, config["set_global"], disabled
            )
            return found

    @property
    def prometheus(self) -> PrometheusReader | None:
        """The reader serving the Prometheus text in this process, once built."""
        return None if self.shared is None else self.shared.prometheus

    def instruments(self) -> Instruments:
        """This process's tracer and instruments, built on the first call in each process.

        The hooks read :attr:`current` first and call this only when it is
        ``None``: before the first call, and in a process forked since (the
        fork hook clears it).
        """
        with self._lock:
            if self._instruments is None or self._pid != getpid():
                self._build()
        assert self._instruments is not None
        return self._instruments

    def look_for_global(self) -> Instruments:
        """Build again if the application set OpenTelemetry's global providers since the last look.

        While the global providers are OpenTelemetry's no-op ones (:attr:`waiting`),
        the hooks call this once :attr:`next_global_check` has passed: asking
        OpenTelemetry costs two environment lookups, so it is asked at most
        once a second, and the application's providers are used within a
        second of being set; calls until then skip all span and measurement
        work.
        """
        self.next_global_check = monotonic() + 1.0
        if self._global_changed():
            with self._lock:
                if self._global_changed():
                    self._build()
        return self.instruments() if self.current is None else self.current

    def _global_changed(self) -> bool:
        return (self._global_tracer is not None and self._global_tracer is not trace.get_tracer_provider()) or (
            self._global_meter is not None and self._global_meter is not metrics.get_meter_provider()
        )

    @property
    def known_noop(self) -> bool:
        """Whether both providers are no-ops for good (given as such, or ``OTEL_SDK_DISABLED``): no hooks needed."""
        tracer, meter = self._tracer_setting, self._meter_setting
        if self.shared is not None and self.shared.disabled:
            tracer = trace.NoOpTracerProvider() if tracer == "sdk" else tracer
            meter = metrics.NoOpMeterProvider() if meter == "sdk" else meter
        return isinstance(tracer, trace.NoOpTracerProvider) and isinstance(meter, metrics.NoOpMeterProvider)

    def _build(self) -> None:
        own: tuple[TracerProvider, MeterProvider] | None = None
        if self.shared is not None:
            own = self.shared.providers()
        tracer_provider: TracerProvider
        if self._tracer_setting == "global":
            tracer_provider = trace.get_tracer_provider()
        elif self._tracer_setting == "sdk":
            assert own is not None
            tracer_provider = own[0]
        else:
            tracer_provider = self._tracer_setting
        meter_provider: MeterProvider
        if self._meter_setting == "global":
            meter_provider = metrics.get_meter_provider()
        elif self._meter_setting == "sdk":
            assert own is not None
            meter_provider = own[1]
        else:
            meter_provider = self._meter_setting
        version = _version()
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._global_tracer = tracer_provider if self._tracer_setting == "global" else None
        self._global_meter = meter_provider if self._meter_setting == "global" else None
        tracing = not isinstance(tracer_provider, (trace.NoOpTracerProvider, trace.ProxyTracerProvider))
        # OpenTelemetry's global meter provider before one is set is a private proxy class.
        measuring = not isinstance(meter_provider, metrics.NoOpMeterProvider) and type(meter_provider).__name__ != (
            "_ProxyMeterProvider"
        )
        self._instruments = Instruments(
            tracer_provider.get_tracer(SCOPE, version),
            meter_provider.get_meter(SCOPE, version),
            self.side,
            tracing,
            measuring,
        )
        self._pid = getpid()
        # While the global providers are OpenTelemetry's no-op proxies, every call
        # asks again (instruments()), to notice when the application sets its own.
        self.waiting = (self._global_tracer is not None and not tracing) or (
            self._global_meter is not None and not measuring
        )
        self.current = self._instruments

    def force_flush(self, timeout_millis: int = 30_000) -> None:
        """Export what this process's own (``"sdk"``) providers hold now."""
        for provider in self._owned():
            provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop this process's own (``"sdk"``) providers, shared with the other instances."""
        for provider in self._owned():
            provider.shutdown()

    def _owned(self) -> list[Any]:
        if self.shared is None or self.shared.tracer_provider is None:
            return []
        owned: list[Any] = []
        if self._tracer_setting == "sdk" and isinstance(self.shared.tracer_provider, SDKTracerProvider):
            owned.append(self.shared.tracer_provider)
        if self._meter_setting == "sdk" and isinstance(self.shared.meter_provider, SDKMeterProvider):
            owned.append(self.shared.meter_provider)
        return owned
