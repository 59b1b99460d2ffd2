"""Metrics in the Prometheus text exposition format (version 0.0.4), read from an SDK meter provider.

No global registry and no extra package: a metric reader of the plugin's own
meter provider collects on each scrape, and this module writes the text.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, ObservableUpDownCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    HistogramDataPoint,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData

if TYPE_CHECKING:
    from pyservice.typing import StartResponse, WSGIEnvironment

__all__ = ["CONTENT_TYPE", "PrometheusReader", "metrics_endpoint", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_CUMULATIVE = {
    Counter: AggregationTemporality.CUMULATIVE,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.CUMULATIVE,
    ObservableCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
# The unit suffixes Prometheus names carry, from the UCUM units OpenTelemetry uses.
_UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}


class PrometheusReader(MetricReader):
    """A pull reader: each :meth:`scrape` collects the provider's metrics now, cumulatively."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality=_CUMULATIVE)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._data: MetricsData | None = None

    def scrape(self) -> MetricsData | None:
        """Collect and return the current metrics (``None`` before the provider registered the reader)."""
        with self._lock:
            self._data = None
            self.collect()
            return self._data

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._data = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to stop: the reader has no thread."""


def _metric_name(name: str, unit: str) -> str:
    result = _INVALID.sub("_", name)
    if result[:1].isdigit():
        result = "_" + result
    suffix = _UNITS.get(unit)
    if suffix is None and unit and not unit.startswith("{"):
        suffix = _INVALID_LABEL.sub("_", unit)
    if suffix and not result.endswith("_" + suffix):
        result += "_" + suffix
    return result


def _label_name(name: str) -> str:
    result = _INVALID_LABEL.sub("_", name)
    return "_" + result if result[:1].isdigit() else result


def _escape(value: object) -> str:
    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(attributes: Any, extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{_label_name(key)}="{_escape(value)}"' for key, value in sorted((attributes or {}).items())]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def render(data: MetricsData | None) -> str:
    """The Prometheus text of ``data``: one family per metric, with ``# HELP`` and ``# TYPE`` lines."""
    lines: list[str] = []
    if data is None:
        return ""
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                lines.extend(_family(metric.name, metric.unit or "", metric.description or "", metric.data))
    return "\n".join(lines) + "\n" if lines else ""


def _family(name: str, unit: str, description: str, data: Any) -> Iterable[str]:
    base = _metric_name(name, unit)
    help_line = f"# HELP {{}} {description.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}"
    if isinstance(data, HistogramData):
        yield help_line.format(base)
        yield f"# TYPE {base} histogram"
        for point in data.data_points:
            yield from _histogram(base, point)
    elif isinstance(data, Sum) and data.is_monotonic:
        counter = base if base.endswith("_total") else base + "_total"
        yield help_line.format(counter)
        yield f"# TYPE {counter} counter"
        for number in data.data_points:
            yield f"{counter}{_labels(number.attributes)} {_number(number.value)}"
    elif isinstance(data, (Sum, Gauge)):
        yield help_line.format(base)
        yield f"# TYPE {base} gauge"
        for number in data.data_points:
            assert isinstance(number, NumberDataPoint)
            yield f"{base}{_labels(number.attributes)} {_number(number.value)}"


def _histogram(base: str, point: HistogramDataPoint) -> Iterable[str]:
    cumulative = 0
    for bound, count in zip(point.explicit_bounds, point.bucket_counts[:-1], strict=True):
        cumulative += count
        yield f"{base}_bucket{_labels(point.attributes, ('le', _number(float(bound))))} {cumulative}"
    yield f"{base}_bucket{_labels(point.attributes, ('le', '+Inf'))} {point.count}"
    yield f"{base}_sum{_labels(point.attributes)} {_number(point.sum)}"
    yield f"{base}_count{_labels(point.attributes)} {point.count}"


def metrics_endpoint(reader_of: Any) -> Any:
    """A GET endpoint answering the Prometheus text of the reader ``reader_of()`` returns in this process."""

    def prometheus_metrics(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        reader = reader_of()
        body = render(None if reader is None else reader.scrape()).encode()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return prometheus_metrics
