from __future__ import annotations

import pyservice
import pytest
from pyservice_otel import Otel

API = {"name": "things", "operations": ["get_thing"]}


def build(side="service", **config):
    owner = pyservice.Service if side == "service" else pyservice.Client
    return owner(**API, plugins={"otel": config})


def test_an_unknown_exporter_name_fails_at_start_up_naming_the_key():
    with pytest.raises(pyservice.ApiError, match=r"plugins\.otel\.span_exporter.*unknown exporter 'zipkin'"):
        build(tracer_provider="sdk", span_exporter="zipkin", metric_exporter="none")


def test_the_otlp_default_without_an_otlp_exporter_installed_fails_naming_the_key_and_the_variable(monkeypatch):
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("an OTLP exporter is installed here")
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    with pytest.raises(pyservice.ApiError, match=r"span_exporter.*pyservice-otel\[otlp\].*OTEL_TRACES_EXPORTER"):
        build(tracer_provider="sdk", meter_provider="global")


def test_the_exporters_are_read_from_the_standard_environment_variables(monkeypatch):
    import exporters

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "exporters:SPANS")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    service = build(tracer_provider="sdk", meter_provider="sdk")
    service.operation("get_thing")(lambda request, response, context: None)
    pyservice.testing.client_for(service, API).get_thing()
    service.plugins[0].force_flush()
    assert [span.name for span in exporters.SPANS.get_finished_spans()][-1] == "things/get_thing"


def test_the_service_name_defaults_to_the_apis_name_unless_otel_service_name_says(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    plugin = build(tracer_provider="sdk", span_exporter="none", metric_exporter="none").plugins[0]
    assert plugin.telemetry.shared.resource_attributes == {"service.name": "things"}
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    plugin = build(tracer_provider="sdk", span_exporter="console", metric_exporter="none").plugins[0]
    assert plugin.telemetry.shared.resource_attributes == {}


def test_a_prometheus_path_on_a_client_is_refused():
    with pytest.raises(pyservice.ApiError, match=r"plugins\.otel\.prometheus_path.*a client serves no path"):
        build("client", meter_provider="sdk", prometheus_path="/metrics")


def test_a_prometheus_path_needs_the_plugins_own_meter_provider():
    with pytest.raises(pyservice.ApiError, match=r"prometheus_path.*expected meter_provider 'sdk'"):
        build(prometheus_path="/metrics")


def test_a_prometheus_path_must_be_a_path():
    with pytest.raises(pyservice.ApiError, match=r"prometheus_path.*starting with '/'"):
        build(meter_provider="sdk", metric_exporter="none", prometheus_path="metrics")


def test_a_prometheus_path_cannot_take_a_health_path():
    with pytest.raises(pyservice.ApiError, match=r"prometheus_path.*already served"):
        build(meter_provider="sdk", metric_exporter="none", prometheus_path="/health/live")


def test_a_provider_must_be_global_sdk_or_a_provider():
    with pytest.raises(
        pyservice.ApiError, match=r"plugins\.otel\.tracer_provider.*expected a string or TracerProvider"
    ):
        build(tracer_provider=42)


def test_a_provider_may_be_named_by_import_path_of_it_or_its_factory():
    from opentelemetry.trace import NoOpTracerProvider

    plugin = build(tracer_provider="opentelemetry.trace:NoOpTracerProvider").plugins[0]
    assert isinstance(plugin.config["tracer_provider"], NoOpTracerProvider)


def test_an_import_path_naming_something_else_is_refused():
    with pytest.raises(pyservice.ApiError, match=r"tracer_provider.*naming a TracerProvider or a factory of one"):
        build(tracer_provider="os:sep")


def test_otel_sdk_disabled_makes_the_plugins_own_providers_no_ops(monkeypatch):
    from opentelemetry.trace import NoOpTracerProvider

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    service = build(tracer_provider="sdk", meter_provider="sdk", span_exporter="console")
    plugin = service.plugins[0]
    plugin.telemetry.instruments()
    assert isinstance(plugin.telemetry.tracer_provider, NoOpTracerProvider)


def test_the_providers_are_built_again_in_a_forked_process(monkeypatch):
    from pyservice_otel import _telemetry

    service = build(tracer_provider="sdk", meter_provider="sdk", span_exporter="none", metric_exporter="none")
    telemetry = service.plugins[0].telemetry
    first = telemetry.instruments()
    first_provider = telemetry.tracer_provider
    assert telemetry.instruments() is first
    monkeypatch.setattr(_telemetry, "getpid", lambda: -12345)  # as a worker forked after start-up sees it
    after_fork = telemetry.instruments()
    assert after_fork is not first
    assert telemetry.tracer_provider is not first_provider


def test_every_option_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for key in [*Otel.options, *Otel.operation_options]:
        assert f"| `{key}` |" in readme, key


def test_a_forked_worker_builds_its_own_providers():
    import os

    service = build(tracer_provider="sdk", meter_provider="sdk", span_exporter="none", metric_exporter="none")
    telemetry = service.plugins[0].telemetry
    parent_instruments = telemetry.instruments()
    assert telemetry.current is parent_instruments
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            cleared = telemetry.current is None
            rebuilt = telemetry.instruments() is not parent_instruments
            os.write(write, b"%d%d" % (cleared, rebuilt))
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"11"
    assert telemetry.current is parent_instruments
