"""The in-process histograms and the sampling of a request's spans."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sidecar.plugins import load_plugins
from sidecar.provider import Target, Usage
from sidecar.record import RequestRecord
from sidecar.runtime import build_router
from sidecar.settings import parse_settings
from sidecar.telemetry.histograms import ExplicitHistogram, WithHistograms
from sidecar.telemetry.otel import OpenTelemetry
from sidecar.telemetry.protobuf import PreEncodedSpan, encode_span, encode_spans

from .support import DEMO_CONFIG, MemoryMetrics

SCOPE = InstrumentationScope("sidecar", "1")
RESOURCE = Resource({"service.name": "llm-sidecar"})


def _empty() -> MetricsData:
    return MetricsData(resource_metrics=[])


def _metric(data: MetricsData, name: str) -> Metric:
    (metric,) = [
        m
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == name
    ]
    return metric


def test_buckets_are_upper_inclusive_and_points_are_per_attribute_set() -> None:
    histogram = ExplicitHistogram("h", "s", "d", (1, 4, 16))
    memory = MemoryMetrics()
    exporter = WithHistograms(memory, [histogram], SCOPE, RESOURCE)
    for value in (0, 1, 1.5, 4, 16, 17):
        histogram.record(value, {"model": "a"})
    histogram.record(2, {"model": "b"})
    exporter.export(_empty())
    metric = _metric(memory.exported[0], "h")
    assert metric.unit == "s"
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    a, b = metric.data.data_points
    assert dict(a.attributes or {}) == {"model": "a"}
    assert list(a.bucket_counts) == [2, 2, 1, 1]  # (-inf,1] (1,4] (4,16] (16,inf)
    assert (a.count, a.sum, a.min, a.max) == (6, 39.5, 0, 17)
    assert list(a.explicit_bounds) == [1.0, 4.0, 16.0]
    assert (b.count, list(b.bucket_counts)) == (1, [0, 1, 0, 0])


def test_cumulative_keeps_counting_and_delta_starts_again() -> None:
    histogram = ExplicitHistogram("h", "s", "d", (1,))
    cumulative, delta = MemoryMetrics(), MemoryMetrics(delta=True)
    exporters = [WithHistograms(m, [histogram], SCOPE, RESOURCE) for m in (cumulative, delta)]
    histogram.record(0.5, {})
    for exporter in exporters:
        exporter.export(_empty())
    histogram.record(2, {})
    histogram.record(3, {})
    for exporter in exporters:
        exporter.export(_empty())
    first, second = (_metric(d, "h").data.data_points[0] for d in cumulative.exported)
    assert (first.count, second.count, second.min, second.max) == (1, 3, 0.5, 3)
    assert second.start_time_unix_nano == first.start_time_unix_nano
    first, second = (_metric(d, "h").data.data_points[0] for d in delta.exported)
    assert _metric(delta.exported[1], "h").data.aggregation_temporality is (
        AggregationTemporality.DELTA
    )
    assert (first.count, second.count, second.min, second.sum) == (1, 2, 2, 5)
    assert second.start_time_unix_nano == first.time_unix_nano
    delta_exporter = exporters[1]
    delta_exporter.export(_empty())  # nothing recorded since: no histogram at all
    assert all(
        m.name != "h"
        for r in delta.exported[2].resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
    )


def test_histograms_join_the_sidecar_scope_or_add_it() -> None:
    histogram = ExplicitHistogram("h", "s", "d", (1,))
    histogram_exporter = MemoryMetrics()
    exporter = WithHistograms(histogram_exporter, [histogram], SCOPE, RESOURCE)
    histogram.record(1, {})
    other = Resource({"service.name": "from the sdk"})
    existing = MetricsData(
        [ResourceMetrics(other, [ScopeMetrics(SCOPE, [], ""), ScopeMetrics(SCOPE, [], "")], "")]
    )
    exporter.export(existing)
    (resource,) = histogram_exporter.exported[0].resource_metrics
    assert resource.resource is other
    assert [len(s.metrics) for s in resource.scope_metrics] == [1, 0]
    exporter.export(MetricsData([ResourceMetrics(other, [], "")]))
    scopes = histogram_exporter.exported[1].resource_metrics[0].scope_metrics
    assert [s.scope.name for s in scopes] == ["sidecar"]
    exporter.export(_empty())
    assert histogram_exporter.exported[2].resource_metrics[0].resource is RESOURCE


def _telemetry(
    tmp_path: Path, sampler: Any, *, pre_encode: bool = False
) -> tuple[OpenTelemetry, InMemorySpanExporter]:
    (tmp_path / "policies").mkdir(exist_ok=True)
    settings = parse_settings(DEMO_CONFIG, base_dir=tmp_path)
    spans = InMemorySpanExporter()
    telemetry = OpenTelemetry(
        settings,
        build_router(settings, load_plugins()),
        span_processors=[SimpleSpanProcessor(spans)],
        sampler=sampler,
        metric_exporters=[MemoryMetrics()],
        metric_export_interval_millis=math.inf,
        pre_encode=pre_encode,
    )
    return telemetry, spans


def _request(telemetry: OpenTelemetry, headers: dict[str, str]) -> str:
    trace = telemetry.start_request(headers)
    carrier = trace.attempt(Target("small", "cloud", "small-1", "light", False), 1, None)
    trace.attempt_succeeded(Usage(3, 4), {"id": "x", "model": "small-1", "choices": []})
    record = RequestRecord(
        "req_1", 0.0, 0.01, 200, False, "auto", "light", "small", "cloud", "p", Usage(3, 4)
    )
    trace.finish(record)
    return carrier["traceparent"]


PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("sampler", "incoming", "exported", "flags"),
    [
        (ALWAYS_ON, None, 2, "01"),
        (ALWAYS_OFF, None, 0, "00"),
        (ParentBased(ALWAYS_ON), f"{PARENT}-00", 0, "00"),  # the caller did not sample
        (ParentBased(ALWAYS_ON), f"{PARENT}-01", 2, "01"),
        (ParentBased(ALWAYS_OFF), f"{PARENT}-01", 2, "01"),
    ],
)
def test_one_sampling_decision_per_request(
    tmp_path: Path, sampler: Any, incoming: str | None, exported: int, flags: str
) -> None:
    telemetry, spans = _telemetry(tmp_path, sampler)
    traceparent = _request(telemetry, {"traceparent": incoming} if incoming else {})
    assert len(spans.get_finished_spans()) == exported
    assert traceparent.endswith(f"-{flags}")
    if incoming:
        assert traceparent.split("-")[1] == PARENT.split("-")[1]
    if exported:
        server, client = sorted(spans.get_finished_spans(), key=lambda s: s.kind.value)
        assert client.parent == server.context
        assert traceparent.split("-")[2] == f"{client.context.span_id:016x}"


def test_the_default_sampler_is_the_environment_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry, spans = _telemetry(tmp_path, None)
    _request(telemetry, {})
    assert spans.get_finished_spans() == ()


def test_spans_encoded_as_they_end_are_what_the_sdk_would_send(tmp_path: Path) -> None:
    telemetry, spans = _telemetry(tmp_path, ALWAYS_ON, pre_encode=True)
    _request(telemetry, {"traceparent": f"{PARENT}-01"})
    finished = spans.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        assert isinstance(span, PreEncodedSpan)
        assert span.otlp == encode_span(span)
    ours = ExportTraceServiceRequest.FromString(encode_spans(finished))
    assert ours == sdk_encode(finished)


def test_unsampled_spans_are_not_encoded(tmp_path: Path) -> None:
    telemetry, spans = _telemetry(tmp_path, ParentBased(ALWAYS_ON), pre_encode=True)
    trace = telemetry.start_request({"traceparent": f"{PARENT}-00"})
    assert trace._recording is False
    _request(telemetry, {"traceparent": f"{PARENT}-00"})
    assert spans.get_finished_spans() == ()


def test_spans_are_encoded_as_they_end_for_the_exporters_that_send_that_encoding(
    tmp_path: Path,
) -> None:
    from sidecar.telemetry.export import exporters_from_environment

    (tmp_path / "policies").mkdir()
    settings = parse_settings(DEMO_CONFIG, base_dir=tmp_path)
    router = build_router(settings, load_plugins())
    for env, pre_encode in [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, False),
    ]:
        exporters = exporters_from_environment(env)
        assert exporters is not None
        telemetry = OpenTelemetry.exporting(settings, router, exporters)
        assert telemetry.pre_encode is pre_encode, env
        for processor in telemetry.processors:
            processor.shutdown()


def _attempt_headers(telemetry: OpenTelemetry, incoming: dict[str, str]) -> dict[str, str]:
    trace = telemetry.start_request(incoming)
    return dict(trace.attempt(Target("small", "cloud", "small-1", "light", False), 1, None))


def _propagators_write(incoming: dict[str, str], traceparent: str) -> dict[str, str]:
    """What the global propagators write for an attempt with this traceparent, under a
    request with these headers."""
    _, trace_id, span_id, flags = traceparent.split("-")
    parent = otel_trace.get_current_span(propagate.extract(incoming)).get_span_context()
    context = SpanContext(
        int(trace_id, 16), int(span_id, 16), False, TraceFlags(int(flags, 16)), parent.trace_state
    )
    carrier: dict[str, str] = {}
    propagate.inject(
        carrier,
        context=otel_trace.set_span_in_context(
            NonRecordingSpan(context), propagate.extract(incoming)
        ),
    )
    return carrier


@pytest.mark.parametrize(
    "incoming",
    [
        {},
        {"traceparent": f"{PARENT}-01"},
        {"traceparent": f"{PARENT}-00"},
        {"traceparent": f"{PARENT}-01", "tracestate": "vendor=1,other=two"},
        {"traceparent": "00-not-a-trace-context"},
        {"baggage": "tenant=a"},
        {"traceparent": f"{PARENT}-01", "baggage": "tenant=a"},
    ],
)
def test_attempts_carry_what_the_default_propagators_would_write(
    tmp_path: Path, incoming: dict[str, str]
) -> None:
    telemetry, _ = _telemetry(tmp_path, ParentBased(ALWAYS_ON))
    carrier = _attempt_headers(telemetry, incoming)
    assert carrier == _propagators_write(incoming, carrier["traceparent"])
    if "baggage" in incoming:
        assert carrier["baggage"] == incoming["baggage"]


class _TenantPropagator(TextMapPropagator):
    """A propagator of a header of its own, as a plugin might set."""

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        return context if context is not None else Context()

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        carrier["x-tenant-trace"] = "yes"

    @property
    def fields(self) -> set[str]:
        return {"x-tenant-trace"}


def test_other_propagators_write_the_attempts_headers(tmp_path: Path) -> None:
    telemetry, _ = _telemetry(tmp_path, ALWAYS_ON)
    default = propagate.get_global_textmap()
    assert "x-tenant-trace" not in _attempt_headers(telemetry, {})
    try:
        propagate.set_global_textmap(
            CompositePropagator([TraceContextTextMapPropagator(), _TenantPropagator()])
        )
        carrier = _attempt_headers(telemetry, {"traceparent": f"{PARENT}-01"})
        assert carrier["x-tenant-trace"] == "yes"
        assert carrier["traceparent"].startswith(PARENT.rsplit("-", 1)[0])
    finally:
        propagate.set_global_textmap(default)
    assert "x-tenant-trace" not in _attempt_headers(telemetry, {})
