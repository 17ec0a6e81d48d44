"""The SDK's OTLP/gRPC span exporter, with the sidecar's span encoder.

Everything but the encoding is the SDK's: the `OTEL_EXPORTER_OTLP_*` variables it reads
(endpoint, insecure, certificates, headers, compression, timeout), its channel and its
retries. The request it sends is parsed from what `protobuf.encode_spans` writes (spans
encoded as they ended, see `PreEncodedSpan`) by protobuf's C parser, instead of being
built message by message in Python, which costs ~160 µs a span (`bench/telemetry.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from .protobuf import encode_spans


class GrpcSpanExporter(OTLPSpanExporter):
    sends_encoded_spans = True
    """It sends what `protobuf.encode_spans` writes: spans are encoded as they end."""

    # The SDK's exporters build their request in `_translate_data` (1.30 to 1.45 at least);
    # `grpc_span_exporter` checks that it is still there, so a later SDK that moves it gets
    # its own encoding rather than a broken exporter.
    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
            encode_spans(data)
        )
        return request


def grpc_span_exporter() -> OTLPSpanExporter:
    """The exporter with the sidecar's encoder, or the SDK's own if its shape changed."""
    if callable(getattr(OTLPSpanExporter, "_translate_data", None)):
        return GrpcSpanExporter()
    return OTLPSpanExporter()
