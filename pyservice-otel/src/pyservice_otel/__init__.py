"""pyservice-otel: OpenTelemetry traces and metrics for pyservice, on both sides.

Enable it in the api description (``"plugins": {"otel": {}}``): each call
gets a span, named and attributed by the RPC semantic conventions, the W3C
trace context travels on the wire so a call across services is one trace,
and the call metrics are recorded. The public API lives here; the modules
behind it are private.
"""

from __future__ import annotations

from ._conventions import ANNOTATION_PREFIX, annotation_attributes
from ._plugin import Otel
from ._prometheus import CONTENT_TYPE, PrometheusReader, render
from ._service import EnvironGetter

__all__ = [
    "ANNOTATION_PREFIX",
    "CONTENT_TYPE",
    "EnvironGetter",
    "Otel",
    "PrometheusReader",
    "annotation_attributes",
    "render",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing the plugin does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-otel")
    raise AttributeError(f"module 'pyservice_otel' has no attribute {name!r}")
