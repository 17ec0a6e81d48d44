"""What a request's telemetry costs on the event loop, and encoding its spans for export.

    taskset -c 1 .venv/bin/python bench/telemetry.py [--requests N] [--runs N]

Drives `OpenTelemetry` as the request path does for a plain request (start, one attempt,
its answer, finish) with the repository's `sidecar.yaml`, each request with its own ids,
against a span processor and a metric exporter that keep nothing. Reports, per request,
the median over runs of:

- `spans and metrics`: everything on the event loop except encoding;
- `+ encoding on the loop`: the same with spans encoded as they end (as `serve` does
  when it exports over http/protobuf), by the sidecar's encoder: in C where the extension
  `sidecar.telemetry._otlp` is built, else in Python; `..., Python encoder`: the same
  with the Python encoder (the fallback) in any case;
- per span: the sidecar's encoder (`sidecar/telemetry/protobuf.py`: C where built, and
  its Python twin) and the SDK's OTLP encoder (`opentelemetry-exporter-otlp-proto-common`,
  what the SDK's exporters run) on the same finished spans.

The variants alternate within each run, so that a machine busy with something else
weighs on all of them alike.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from sidecar.plugins import load_plugins
from sidecar.provider import Target, Usage
from sidecar.record import RequestRecord
from sidecar.runtime import build_router
from sidecar.settings import load_settings
from sidecar.telemetry import otel as otel_module
from sidecar.telemetry import protobuf
from sidecar.telemetry.otel import OpenTelemetry

REPO = Path(__file__).resolve().parents[1]


class Keep(SpanExporter):
    """Keeps the last spans; exports nothing."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        del self.spans[:-64]
        return SpanExportResult.SUCCESS


class Drop(MetricExporter):
    def __init__(self) -> None:
        super().__init__()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def telemetry(pre_encode: bool) -> tuple[OpenTelemetry, Keep]:
    settings = load_settings(REPO / "sidecar.yaml")
    keep = Keep()
    otel = OpenTelemetry(
        settings,
        build_router(settings, load_plugins()),
        span_processors=[SimpleSpanProcessor(keep)],
        metric_exporters=[Drop()],
        metric_export_interval_millis=math.inf,
        pre_encode=pre_encode,
    )
    return otel, keep


def requests(otel: OpenTelemetry, count: int, first: int) -> float:
    """µs per request."""
    target = Target("demo-light", "demo-cloud", "demo-light", "light", False)
    usage = Usage(519, 87, cached_input_tokens=128)
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    records = [
        RequestRecord(
            f"req_{first + i:012x}",
            0.0,
            0.01,
            200,
            False,
            "auto",
            "light",
            "demo-light",
            "demo-cloud",
            "50-light",
            usage,
            cost_usd=1.3e-4,
            baseline_cost_usd=2.1e-3,
            response_model="demo-light-2025-01-01",
        )
        for i in range(count)
    ]
    answers = [
        {
            "id": f"chatcmpl-{first + i:020x}",
            "model": "demo-light-2025-01-01",
            "choices": [{"finish_reason": "stop"}],
        }
        for i in range(count)
    ]
    began = time.perf_counter()
    for record, answer in zip(records, answers, strict=True):
        trace = otel.start_request(headers)
        trace.attempt(target, 1, None)
        trace.attempt_succeeded(usage, answer)
        trace.finish(record)
    return (time.perf_counter() - began) / count * 1e6


def per_span(encode: Any, spans: list[ReadableSpan], rounds: int = 20) -> float:
    began = time.perf_counter()
    for _ in range(rounds):
        encode(spans)
    return (time.perf_counter() - began) / rounds / len(spans) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    plain, _ = telemetry(pre_encode=False)
    encoding, keep = telemetry(pre_encode=True)
    encoder = protobuf.encode_span
    native = "C" if encoder is not protobuf._python_encode_span else "Python: no C extension"
    results: dict[str, list[float]] = {
        "spans and metrics": [],
        "+ encoding on the loop": [],
        "+ encoding on the loop, Python encoder": [],
        f"span, sidecar encoder ({native})": [],
        "span, sidecar encoder (Python)": [],
        "span, SDK encoder": [],
    }
    for run in range(args.runs):
        first = run * args.requests
        results["spans and metrics"].append(requests(plain, args.requests, first))
        results["+ encoding on the loop"].append(requests(encoding, args.requests, first))
        otel_module.encode_span = protobuf._python_encode_span
        try:
            python = requests(encoding, args.requests, first)
        finally:
            otel_module.encode_span = encoder
        results["+ encoding on the loop, Python encoder"].append(python)
        spans = list(keep.spans)
        # encode_span, not encode_spans: these spans carry their encoding already.
        results[f"span, sidecar encoder ({native})"].append(
            per_span(lambda s: b"".join(encoder(x) for x in s), spans)
        )
        results["span, sidecar encoder (Python)"].append(
            per_span(lambda s: b"".join(protobuf._python_encode_span(x) for x in s), spans)
        )
        results["span, SDK encoder"].append(
            per_span(lambda s: sdk_encode(s).SerializeToString(), spans)
        )
    print(f"{'':54} {'median µs':>10} {'min':>7} {'max':>7}")
    for name, samples in results.items():
        label = f"{name} ({'per span' if name.startswith('span,') else 'per request'})"
        median = statistics.median(samples)
        print(f"{label:54} {median:>10.1f} {min(samples):>7.1f} {max(samples):>7.1f}")


if __name__ == "__main__":
    main()
