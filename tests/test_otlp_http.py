"""The OTLP/HTTP span exporter against a scripted collector on 127.0.0.1: what it sends,
how it reads the OTEL_* variables, and when it retries."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import Counter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from sidecar.errors import ConfigError
from sidecar.telemetry.otlp_http import OtlpHttpMetricExporter, OtlpHttpSpanExporter, Sender


class Collector:
    """Answers each POST with the next scripted (status, headers); then 200."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.received.append((self.path, dict(self.headers), body))
                status, headers = collector.script.pop(0) if collector.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()
    c.server.server_close()


def _spans(count: int = 2) -> list[ReadableSpan]:
    return [
        ReadableSpan(
            f"span {i}",
            context=SpanContext(1, i + 1, False, TraceFlags(1)),
            resource=Resource({"service.name": "llm-sidecar"}),
            attributes={"sidecar.tier": "light"},
            start_time=1,
            end_time=2,
        )
        for i in range(count)
    ]


def _names(body: bytes) -> list[str]:
    request = ExportTraceServiceRequest.FromString(body)
    return [s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]


def test_it_posts_protobuf_to_the_traces_path_with_the_configured_headers(
    collector: Collector,
) -> None:
    exporter = OtlpHttpSpanExporter.from_environment(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cret,x-team=ml%20platform",
        }
    )
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    path, headers, body = collector.received[0]
    assert path == "/v1/traces"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["api-key"] == "s3cret"
    assert headers["x-team"] == "ml platform"
    assert _names(body) == ["span 0", "span 1"]
    exporter.shutdown()
    assert exporter.export(_spans()) is SpanExportResult.FAILURE  # after shutdown


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_compression(collector: Collector, compression: str) -> None:
    exporter = OtlpHttpSpanExporter.from_environment(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.url + "/custom/path",
            "OTEL_EXPORTER_OTLP_COMPRESSION": compression,
        }
    )
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    path, headers, body = collector.received[0]
    assert path == "/custom/path"  # a signal endpoint is used as given
    assert headers["Content-Encoding"] == compression
    raw = gzip.decompress(body) if compression == "gzip" else zlib.decompress(body)
    assert _names(raw) == ["span 0", "span 1"]


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, "http://localhost:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/otlp"}, "https://c/otlp/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/traces",
            },
            "http://t:9/traces",
        ),
    ],
)
def test_the_endpoint_as_the_sdk_resolves_it(env: dict[str, str], endpoint: str) -> None:
    assert OtlpHttpSpanExporter.from_environment(env).sender.endpoint == endpoint


def test_timeout_in_seconds_and_the_traces_variable_first() -> None:
    env = {"OTEL_EXPORTER_OTLP_TIMEOUT": "3", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5"}
    assert OtlpHttpSpanExporter.from_environment(env).sender.timeout == 2.5
    assert (
        OtlpHttpSpanExporter.from_environment({"OTEL_EXPORTER_OTLP_TIMEOUT": "3"}).sender.timeout
        == 3
    )


def test_a_busy_collector_is_retried_after_its_retry_after(collector: Collector) -> None:
    collector.script = [(503, {"Retry-After": "0"}), (429, {"Retry-After": "0.05"})]
    exporter = OtlpHttpSpanExporter(Sender(collector.url + "/v1/traces"))
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    assert len(collector.received) == 3
    assert collector.received[0][2] == collector.received[2][2]


def test_a_refusal_is_not_retried_and_is_logged(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.script = [(400, {})]
    exporter = OtlpHttpSpanExporter(
        Sender(collector.url + "/v1/traces", headers={"api-key": "s3cret"})
    )
    assert exporter.export(_spans()) is SpanExportResult.FAILURE
    assert len(collector.received) == 1
    assert "Failed to export 2 spans" in caplog.text
    assert "400" in caplog.text
    assert "s3cret" not in caplog.text


def test_retries_stop_at_the_timeout(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.script = [(503, {})] * 10
    exporter = OtlpHttpSpanExporter(Sender(collector.url + "/v1/traces", timeout=1.5))
    began = time.monotonic()
    assert exporter.export(_spans()) is SpanExportResult.FAILURE
    # Backoff 1 s (+-20%), then the next wait (~2 s) would pass the deadline: two posts.
    assert time.monotonic() - began < 1.5
    assert len(collector.received) == 2
    assert "Transient error" in caplog.text
    assert "gave up" in caplog.text


def test_shutdown_cuts_a_backoff_short(collector: Collector) -> None:
    collector.script = [(503, {"Retry-After": "30"})]
    exporter = OtlpHttpSpanExporter(Sender(collector.url + "/v1/traces", timeout=60))
    outcome: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: outcome.append(exporter.export(_spans())))
    worker.start()
    deadline = time.monotonic() + 5
    while not collector.received and time.monotonic() < deadline:
        time.sleep(0.01)
    began = time.monotonic()
    exporter.shutdown()
    worker.join(5)
    assert time.monotonic() - began < 1
    assert outcome == [SpanExportResult.FAILURE]


def test_no_collector_listening_fails_within_the_timeout() -> None:
    exporter = OtlpHttpSpanExporter(Sender("http://127.0.0.1:9/v1/traces", timeout=0.5))
    began = time.monotonic()
    assert exporter.export(_spans()) is SpanExportResult.FAILURE
    assert time.monotonic() - began < 2


def test_metrics_go_to_their_path_encoded_by_the_sdk_encoder(collector: Collector) -> None:
    exporter = OtlpHttpMetricExporter.from_environment(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "k=v"}
    )
    point = NumberDataPoint({"sidecar.tier": "light"}, 1, 2, 7)
    metric = Metric(
        "sidecar.requests", "", "{request}", Sum([point], AggregationTemporality.CUMULATIVE, True)
    )
    data = MetricsData(
        [
            ResourceMetrics(
                Resource({"service.name": "llm-sidecar"}),
                [ScopeMetrics(InstrumentationScope("sidecar"), [metric], "")],
                "",
            )
        ]
    )
    assert exporter.export(data) is MetricExportResult.SUCCESS
    path, headers, body = collector.received[0]
    assert path == "/v1/metrics"
    assert headers["k"] == "v"
    decoded = ExportMetricsServiceRequest.FromString(body)
    (sent,) = decoded.resource_metrics[0].scope_metrics[0].metrics
    assert sent.name == "sidecar.requests"
    assert sent.sum.data_points[0].as_int == 7


@pytest.mark.parametrize(
    ("preference", "counter", "up_down"),
    [
        ("", None, None),  # cumulative: the reader's default for all
        ("DELTA", AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE),
        ("lowmemory", AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE),
    ],
)
def test_metrics_temporality_preference(
    preference: str, counter: AggregationTemporality | None, up_down: Any
) -> None:
    exporter = OtlpHttpMetricExporter.from_environment(
        {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": preference}
    )
    temporality = exporter._preferred_temporality or {}
    assert temporality.get(Counter) == counter
    assert temporality.get(UpDownCounter) == up_down


def test_a_wrong_metrics_variable_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        OtlpHttpMetricExporter.from_environment(
            {
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sometimes",
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "-1",
            }
        )
    message = str(caught.value)
    assert "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '-1' is not a positive number" in message
    assert "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: unsupported temporality" in message
