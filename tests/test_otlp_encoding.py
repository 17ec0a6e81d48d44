"""The span encoder writes the message the SDK's OTLP encoder builds, field for field."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from sidecar.telemetry import protobuf
from sidecar.telemetry.otlp_grpc import GrpcSpanExporter
from sidecar.telemetry.protobuf import encode_spans

RESOURCE = Resource({"service.name": "llm-sidecar", "service.version": "1.0", "pid": 7})
OTHER_RESOURCE = Resource({"service.name": "other"}, schema_url="https://opentelemetry.io/s/1")
SCOPE = InstrumentationScope("sidecar", "1.0")
OTHER_SCOPE = InstrumentationScope("other", None, "https://example.com/schema")

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_PARENT = SpanContext(TRACE_ID, 0x00F067AA0BA902B7, is_remote=True)


def _span(
    name: str = "chat gpt-4o-mini",
    *,
    span_id: int = 0x1234,
    attributes: dict[str, Any] | None = None,
    parent: SpanContext | None = None,
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = SCOPE,
    **kwargs: Any,
) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=SpanContext(TRACE_ID, span_id, False, TraceFlags(TraceFlags.SAMPLED)),
        parent=parent,
        resource=resource,
        attributes=attributes if attributes is not None else {"gen_ai.request.model": "m"},
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_000_123_456_789,
        instrumentation_scope=scope,
        **kwargs,
    )


def _same_as_sdk(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    theirs = sdk_encode(spans)
    assert GrpcSpanExporter()._translate_data(spans) == ours  # what grpc export sends
    # Older SDKs (1.30) leave out a scope's schema_url; newer ones write it, as we do.
    for our_resource, their_resource in zip(
        ours.resource_spans, theirs.resource_spans, strict=True
    ):
        for our_scope, their_scope in zip(
            our_resource.scope_spans, their_resource.scope_spans, strict=True
        ):
            if not their_scope.schema_url:
                our_scope.schema_url = ""
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )
    return ours


def test_every_attribute_type_and_span_field() -> None:
    span = _span(
        "POST /v1/chat/completions",
        parent=REMOTE_PARENT,
        kind=SpanKind.SERVER,
        attributes={
            "str": "light",
            "unicode": "Zürich 東京 🙂",
            "empty": "",
            "true": True,
            "false": False,
            "zero": 0,
            "int": 8080,
            "negative": -42,
            "int64 max": (1 << 63) - 1,
            "int64 min": -(1 << 63),
            "float": 0.000123,
            "float zero": 0.0,
            "strings": ("stop", "length"),
            "ints": [1, 2, 300],
            "mixed": ["a", 1, 2.5, True],
            "empty list": [],
            "bytes": b"\x00\x01",
            "mapping": {"k": "v", "n": 1},
        },
        events=[
            Event("sidecar.classifier.failed", {"sidecar.classifier": "task"}, 1_700_000_000_1),
            Event("no attributes", None, 1_700_000_000_2),
        ],
        links=[
            Link(SpanContext(1, 2, is_remote=True, trace_state=TraceState([("a", "1")])), {"x": 1})
        ],
        status=Status(StatusCode.ERROR, "upstream answered 503"),
    )
    decoded = _same_as_sdk([span])
    encoded = decoded.resource_spans[0].scope_spans[0].spans[0]
    assert encoded.flags == 0x300  # has is_remote, is remote
    assert encoded.kind == 2  # SPAN_KIND_SERVER


def test_kinds_statuses_trace_state_and_local_parents() -> None:
    state = TraceState([("vendor", "abc"), ("other", "xy")])
    spans = [
        _span(kind=kind, span_id=i + 1, status=status, parent=SpanContext(TRACE_ID, 99, False))
        for i, (kind, status) in enumerate(
            [
                (SpanKind.INTERNAL, Status(StatusCode.UNSET)),
                (SpanKind.SERVER, Status(StatusCode.OK)),
                (SpanKind.CLIENT, Status(StatusCode.ERROR)),
                (SpanKind.PRODUCER, Status(StatusCode.ERROR, "the stream broke")),
                (SpanKind.CONSUMER, Status(StatusCode.UNSET)),
            ]
        )
    ]
    spans.append(
        ReadableSpan(
            "with state",
            context=SpanContext(TRACE_ID, 77, False, TraceFlags(1), state),
            resource=RESOURCE,
            instrumentation_scope=SCOPE,
        )
    )
    decoded = _same_as_sdk(spans)
    assert decoded.resource_spans[0].scope_spans[0].spans[-1].trace_state == "vendor=abc,other=xy"


def test_spans_are_grouped_by_resource_then_scope_in_order_of_appearance() -> None:
    spans = [
        _span(span_id=1),
        _span(span_id=2, scope=OTHER_SCOPE),
        _span(span_id=3, resource=OTHER_RESOURCE),
        _span(span_id=4),
        _span(span_id=5, scope=None),
    ]
    decoded = _same_as_sdk(spans)
    assert [len(r.scope_spans) for r in decoded.resource_spans] == [3, 1]
    assert [s.span_id[-1] for s in decoded.resource_spans[0].scope_spans[0].spans] == [1, 4]


def test_a_value_that_cannot_be_encoded_is_left_out_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    span = _span(attributes={"ok": 1, "too big": 1 << 64, "object": object(), "after": "x"})
    caplog.set_level(logging.ERROR, logger="sidecar")
    decoded = ExportTraceServiceRequest.FromString(encode_spans([span]))
    attributes = decoded.resource_spans[0].scope_spans[0].spans[0].attributes
    assert [kv.key for kv in attributes] == ["ok", "after"]
    assert "too big" in caplog.text
    assert "object" in caplog.text


def test_the_string_cache_empties_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protobuf, "_STRING_PAIRS_MAX", 8)
    monkeypatch.setattr(protobuf, "_STRING_PAIRS", {})
    spans = [
        _span(span_id=i + 1, attributes={"sidecar.request_id": f"req_{i}", "tier": "light"})
        for i in range(50)
    ]
    decoded = _same_as_sdk(spans)
    assert len(protobuf._STRING_PAIRS) <= 8
    ids = [
        s.attributes[0].value.string_value for s in decoded.resource_spans[0].scope_spans[0].spans
    ]
    assert ids == [f"req_{i}" for i in range(50)]


def test_no_spans_is_an_empty_request() -> None:
    assert encode_spans([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == sdk_encode([])
