"""Exporters the tests name by import path (``exporters:SPANS``), as an api description would."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SPANS = InMemorySpanExporter()
