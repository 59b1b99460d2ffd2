from __future__ import annotations

import pyservice
import pyservice.testing
from opentelemetry.sdk.metrics import MeterProvider
from pyservice_otel import CONTENT_TYPE, PrometheusReader, render


def scrape(record) -> str:
    reader = PrometheusReader()
    provider = MeterProvider(metric_readers=[reader])
    record(provider.get_meter("test"))
    try:
        return render(reader.scrape())
    finally:
        provider.shutdown()


def test_a_histogram_is_written_with_cumulative_buckets_sum_and_count():
    def record(meter):
        histogram = meter.create_histogram(
            "rpc.server.call.duration", unit="s", description="Call time.", explicit_bucket_boundaries_advisory=[0.1, 1]
        )
        for value in (0.05, 0.5, 5):
            histogram.record(value, {"rpc.method": "things/get"})

    assert scrape(record).splitlines() == [
        "# HELP rpc_server_call_duration_seconds Call time.",
        "# TYPE rpc_server_call_duration_seconds histogram",
        'rpc_server_call_duration_seconds_bucket{rpc_method="things/get",le="0.1"} 1',
        'rpc_server_call_duration_seconds_bucket{rpc_method="things/get",le="1.0"} 2',
        'rpc_server_call_duration_seconds_bucket{rpc_method="things/get",le="+Inf"} 3',
        'rpc_server_call_duration_seconds_sum{rpc_method="things/get"} 5.55',
        'rpc_server_call_duration_seconds_count{rpc_method="things/get"} 3',
    ]


def test_a_counter_gets_total_and_an_up_down_counter_is_a_gauge():
    def record(meter):
        meter.create_counter("calls", unit="{call}", description="Calls.").add(3)
        meter.create_up_down_counter("rpc.server.active_requests", unit="{request}", description="In flight.").add(2)

    text = scrape(record)
    assert "# TYPE calls_total counter\ncalls_total 3\n" in text
    assert "# TYPE rpc_server_active_requests gauge\nrpc_server_active_requests 2\n" in text


def test_label_values_are_escaped():
    def record(meter):
        meter.create_counter("errors").add(1, {"error.type": 'a "quoted"\\ name\nnext'})

    assert 'errors_total{error_type="a \\"quoted\\"\\\\ name\\nnext"} 1' in scrape(record)


def test_no_metrics_render_as_an_empty_body():
    assert render(None) == ""


def test_the_path_answers_head_and_refuses_post():
    api = {"name": "things", "operations": ["get_thing"]}
    config = {"meter_provider": "sdk", "metric_exporter": "none", "prometheus_path": "/metrics"}
    service = pyservice.Service(**api, plugins={"otel": config})
    service.operation("get_thing")(lambda request, response, context: None)
    client = pyservice.testing.client_for(service, api)
    url = client.api.endpoint.base_url + "/metrics"
    head = client.session.head(url)
    assert head.status_code == 200
    assert head.headers["Content-Type"] == CONTENT_TYPE
    assert head.content == b""
    assert client.session.post(url, data=b"{}").status_code == 405
