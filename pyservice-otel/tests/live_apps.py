"""What the two services LiveServer runs share: their plugin config, and an exporter to a file.

Spans are written as JSON lines to the file ``OTEL_TEST_SPANS`` names, one
line per span, so the test reads what every worker exported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class FileSpanExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": f"{span.context.trace_id:032x}",
                        "span_id": f"{span.context.span_id:016x}",
                        "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
                        "pid": os.getpid(),
                        "service_name": span.resource.attributes.get("service.name"),
                    }
                )
            )
        # One write per batch on an O_APPEND file: lines of several workers do not interleave.
        with open(self.path, "a") as file:
            file.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


def file_exporter() -> FileSpanExporter:
    return FileSpanExporter(os.environ["OTEL_TEST_SPANS"])


OTEL = {
    "tracer_provider": "sdk",
    "meter_provider": "sdk",
    "span_exporter": "live_apps:file_exporter",
    "metric_exporter": "none",
}
