"""Finished spans encoded as an OTLP `ExportTraceServiceRequest`, straight to bytes.

The SDK's OTLP exporters build a generated protobuf message per span, per attribute and
per value, then serialise them: ~170 µs per span of the sidecar's (12-20 attributes;
one core, protobuf 7 with its C backend, SDK 1.45), ~40% of the CPU a request costs with
telemetry on, spent on a thread that holds the interpreter lock. Here the wire format is
written directly: field tags and attribute keys are encoded once and kept, values are
appended as they come. Same message, same field values as the SDK's encoder (a test
decodes both with the generated classes and compares them), a fraction of the cost.

The encoder is written twice. In C (`_otlp.c`, where the extension is built; see there):
one pass into one buffer, reading the SDK's span, context and status fields directly
where `_layout` finds them as it expects, ~2.5 µs a span. In Python (below, the
`_python_*` functions): the fallback without a C compiler, ~40 µs a span, and the
reference the C encoder equals byte for byte (tests compare the two on random spans).
The C encoder writes values of the plain types (str, int, float, bool, None, bytes,
tuples, lists and dicts of them); a span with anything else it hands whole to the
Python encoder, which converts, leaves out and logs, or raises as below. Encoding a
request's two spans on the event loop adds ~10 µs to it in C, ~110 µs in Python (to
~100 µs without encoding). Figures: one core, `taskset -c 1 .venv/bin/python
bench/telemetry.py`, which runs both.

Protobuf wire format, as used below: a field is a tag, `(number << 3) | wire type`, then
its value; wire type 0 is a varint, 1 eight bytes little-endian, 2 a varint length then
that many bytes (strings, bytes, embedded messages), 5 four bytes little-endian. Fields
left at their default (0, "", empty) are not written, as protobuf's serialisers do.

The messages (opentelemetry-proto, `trace/v1/trace.proto`, `common/v1/common.proto`):

    ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2;
                    string schema_url = 3; }
    Resource { repeated KeyValue attributes = 1; }
    ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2;
                 string schema_url = 3; }
    InstrumentationScope { string name = 1; string version = 2;
                           repeated KeyValue attributes = 3; }
    Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3;
           bytes parent_span_id = 4; string name = 5; SpanKind kind = 6;
           fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
           repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
           repeated Event events = 11; uint32 dropped_events_count = 12;
           repeated Link links = 13; uint32 dropped_links_count = 14;
           Status status = 15; fixed32 flags = 16; }
    Span.Event { fixed64 time_unix_nano = 1; string name = 2;
                 repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
    Span.Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3;
                repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5;
                fixed32 flags = 6; }
    Status { string message = 2; StatusCode code = 3; }
    KeyValue { string key = 1; AnyValue value = 2; }
    AnyValue { oneof { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
               double double_value = 4; ArrayValue array_value = 5;
               KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
    ArrayValue { repeated AnyValue values = 1; }   KeyValueList { repeated KeyValue values = 1; }
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from .. import native

logger = logging.getLogger("sidecar")

_INT64 = (1 << 64) - 1
_SMALL = [bytes((n,)) for n in range(128)]
_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")

# Span.flags: the context has an is_remote bit (0x100), and it is set (0x200).
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _tag(number, 2) + _varint(len(payload)) + payload


_KEY_PREFIXES: dict[str, bytes] = {}


def _key_value(key: str, value: Any) -> bytes:
    """A KeyValue message's content."""
    any_value = _any_value(value)
    return _key_prefix(key) + b"\x12" + _varint(len(any_value)) + any_value


def _any_value(value: Any) -> bytes:
    """An AnyValue message's content."""
    # Exact type checks first: the common cases, cheaply (bool is an int subclass).
    kind = type(value)
    if kind is str:
        encoded: bytes = value.encode()
        return b"\x0a" + _varint(len(encoded)) + encoded
    if kind is int:
        if not -(1 << 63) <= value < 1 << 63:
            raise ValueError(f"{value} does not fit an int64")
        return b"\x18" + _varint(value & _INT64)
    if kind is float:
        return b"\x21" + _DOUBLE.pack(value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _any_value(str(value))
    if isinstance(value, int):
        return _any_value(int(value))
    if isinstance(value, float):
        return _any_value(float(value))
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(6, b"".join(_field(1, _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


_STRING_PAIRS: dict[tuple[int, str, str], bytes] = {}
"""Attribute fields (tag, length, KeyValue) of string values, by field number, key and
value: most repeat from span to span (model, tier, provider, address ...). Emptied when
full, so unique values (ids) cannot grow it without bound. The Python encoder's only: the
C one writes a string in less time than a look-up here takes."""
_STRING_PAIRS_MAX = 4096
_INT64_MIN = -(1 << 63)
_INT64_END = 1 << 63


def _key_prefix(key: str) -> bytes:
    prefix = _KEY_PREFIXES.get(key)
    if prefix is None:
        prefix = _field(1, key.encode())
        if len(_KEY_PREFIXES) < 4096:  # attribute names are few; a bound all the same
            _KEY_PREFIXES[key] = prefix
    return prefix


def _python_attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    """KeyValue fields `number`, one per attribute (the C `_otlp.attributes` twin)."""
    if not attributes:
        return b""
    parts = []
    tag = _tag(number, 2)
    pairs = _STRING_PAIRS
    small = _SMALL
    # The common scalar types are written inline: this runs for every attribute of every
    # span, and a function call costs as much as the encoding itself.
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:
            field = pairs.get((number, key, value))
            if field is not None:
                parts.append(field)
                continue
            try:
                kv = _key_value(key, value)
            except Exception as error:  # as the SDK's encoder: the attribute is left out
                logger.error("telemetry: attribute %s not encoded: %s", key, error)
                continue
            n = len(kv)
            field = tag + (small[n] if n < 0x80 else _varint(n)) + kv
            if len(pairs) >= _STRING_PAIRS_MAX:
                pairs.clear()
            pairs[number, key, value] = field
            parts.append(field)
            continue
        if kind is int and _INT64_MIN <= value < _INT64_END:
            v = value & _INT64
            any_value = b"\x18" + (small[v] if v < 0x80 else _varint(v))
        elif kind is float:
            any_value = b"\x21" + _DOUBLE.pack(value)
        elif kind is bool:
            any_value = b"\x10\x01" if value else b"\x10\x00"
        else:
            try:
                kv = _key_value(key, value)
            except Exception as error:
                logger.error("telemetry: attribute %s not encoded: %s", key, error)
                continue
            n = len(kv)
            parts.append(tag + (small[n] if n < 0x80 else _varint(n)) + kv)
            continue
        # A scalar AnyValue is at most 11 bytes: its KeyValue's length is one byte if the
        # key is short, as attribute keys are.
        kv = _key_prefix(key) + b"\x12" + small[len(any_value)] + any_value
        n = len(kv)
        parts.append(tag + (small[n] if n < 0x80 else _varint(n)) + kv)
    return b"".join(parts)


def _string(number: int, value: str | None) -> bytes:
    return _field(number, value.encode()) if value else b""


def _uint(number: int, value: int) -> bytes:
    return _tag(number, 0) + _varint(value) if value else b""


def _trace_state(context: SpanContext) -> str:
    state = context.trace_state
    return ",".join(f"{k}={v}" for k, v in state.items()) if state else ""


def _flags(parent: SpanContext | None) -> int:
    return (
        _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE
    )


_KINDS = {kind: _uint(6, kind.value + 1) for kind in SpanKind}  # OTLP counts from UNSPECIFIED
_STATUSES: dict[tuple[StatusCode, str | None], bytes] = {}


def _status(status: Status) -> bytes:
    key = (status.status_code, status.description)
    encoded = _STATUSES.get(key)
    if encoded is None:
        encoded = _field(15, _string(2, status.description) + _uint(3, status.status_code.value))
        if len(_STATUSES) < 256:  # descriptions of errors vary; the common ones are kept
            _STATUSES[key] = encoded
    return encoded


_LOCAL_FLAGS = b"\x85\x01" + _FIXED32.pack(_HAS_IS_REMOTE)
_REMOTE_FLAGS = b"\x85\x01" + _FIXED32.pack(_HAS_IS_REMOTE | _IS_REMOTE)


def _span(span: ReadableSpan) -> bytes:
    context = span.context
    assert context is not None
    parent = span.parent
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        parts.append(_string(3, _trace_state(context)))
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_string(5, span.name))
    parts.append(_KINDS[span.kind])
    if span.start_time:
        parts.append(b"\x39" + _FIXED64.pack(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _FIXED64.pack(span.end_time))
    parts.append(_python_attributes(9, span.attributes))
    parts.append(_uint(10, span.dropped_attributes))
    for event in span.events:
        parts.append(
            _field(
                11,
                (b"\x09" + _FIXED64.pack(event.timestamp) if event.timestamp else b"")
                + _string(2, event.name)
                + _python_attributes(3, event.attributes)
                + _uint(4, event.dropped_attributes),
            )
        )
    parts.append(_uint(12, span.dropped_events))
    for link in span.links:  # no trace_state: the SDK's encoder writes none for links
        parts.append(
            _field(
                13,
                b"\x0a\x10"
                + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08"
                + link.context.span_id.to_bytes(8, "big")
                + _python_attributes(4, link.attributes)
                + _uint(5, link.dropped_attributes)
                + b"\x35"
                + _FIXED32.pack(_flags(link.context)),
            )
        )
    parts.append(_uint(14, span.dropped_links))
    parts.append(_status(span.status))
    parts.append(_REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS)
    return b"".join(parts)


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b""
    return (
        _string(1, scope.name) + _string(2, scope.version) + _encode_attributes(3, scope.attributes)
    )


_Scoped = tuple[InstrumentationScope | None, list[bytes]]


def _python_encode_span(span: ReadableSpan) -> bytes:
    """One span as a ScopeSpans `spans` field (number 2): the C `_otlp.encode_span` twin."""
    return _field(2, _span(span))


encode_span: Callable[[ReadableSpan], bytes] = _python_encode_span
"""One span as a ScopeSpans `spans` field (number 2): in C where the extension is built."""
_encode_attributes: Callable[[int, Mapping[str, Any] | None], bytes] = _python_attributes


class PreEncodedSpan(ReadableSpan):
    """A finished span that carries its encoding (`encode_span`), written where it ended.

    The sidecar encodes its spans on the event loop as each request finishes (~2.5 µs
    a span on one core in C, ~40 in Python), not in the exporter's thread a batch at
    a time: with the Python encoder, encoding 512 spans there holds the interpreter lock
    for ~20 ms in 5 ms slices, and each request that wakes up meanwhile waits for it (p99
    latency at one client: ~12 ms, against ~3 ms with telemetry off). The CPU is the same;
    its cost lands on the request that made the span.
    """

    otlp: bytes | None = None
    """Set where the span ended, if an exporter sends this encoding (else encoded then)."""


def encode_spans(spans: Iterable[ReadableSpan]) -> bytes:
    """The serialised `ExportTraceServiceRequest` for `spans`."""
    # Grouped by resource, then scope, in order of first appearance, as the SDK does; by
    # identity, not equality (hashing a Resource serialises its attributes).
    resources: dict[int, tuple[Resource, dict[int, _Scoped]]] = {}
    for span in spans:
        resource = span.resource
        scopes = resources.get(id(resource))
        if scopes is None:
            scopes = resources[id(resource)] = (resource, {})
        scope = span.instrumentation_scope
        scoped = scopes[1].get(id(scope))
        if scoped is None:
            scoped = scopes[1][id(scope)] = (scope, [])
        ready = span.otlp if type(span) is PreEncodedSpan else None
        scoped[1].append(ready or encode_span(span))
    out = []
    for resource, by_scope in resources.values():
        body = [_field(1, _encode_attributes(1, resource.attributes))]
        for scope, encoded in by_scope.values():
            body.append(
                _field(
                    2,
                    _field(1, _scope(scope))
                    + b"".join(encoded)
                    + _string(3, scope.schema_url if scope is not None else None),
                )
            )
        body.append(_string(3, resource.schema_url))
        out.append(_field(1, b"".join(body)))
    return b"".join(out)


_PROPERTIES = (
    "context",
    "parent",
    "name",
    "kind",
    "start_time",
    "end_time",
    "attributes",
    "dropped_attributes",
    "events",
    "dropped_events",
    "links",
    "dropped_links",
    "status",
)


def _layout() -> tuple[tuple[type, ...], type, type] | None:
    """The span, context and status types whose fields the C encoder may read directly,
    if the installed SDK keeps what their properties return where it did when this was
    written (else None: the C encoder calls the properties, ~4 µs a span more)."""
    context = SpanContext(7, 8, True, TraceFlags(1), TraceState([("k", "v")]))
    parent = SpanContext(9, 10, False)
    status = Status(StatusCode.ERROR, "description")
    attributes = {"a": 1}
    events = [Event("event", {"b": 2}, 11)]
    links = [Link(parent, {"c": 3})]
    span = PreEncodedSpan(
        "name",
        context,
        parent,
        None,
        attributes,
        events,
        links,
        SpanKind.CLIENT,
        status=status,
        start_time=12,
        end_time=13,
    )
    fields = {
        "context": context,
        "parent": parent,
        "name": "name",
        "kind": SpanKind.CLIENT,
        "start_time": 12,
        "end_time": 13,
        "attributes": attributes,
        "events": events,
        "links": links,
        "status": status,
    }
    known = (
        all(getattr(PreEncodedSpan, name) is getattr(ReadableSpan, name) for name in _PROPERTIES)
        and all(getattr(span, "_" + name, None) is value for name, value in fields.items())
        and all(
            getattr(span, name) is value
            for name, value in fields.items()
            if name not in ("attributes", "events", "links")
        )
        and span.attributes == attributes
        and span.events == tuple(events)
        and span.links == tuple(links)
        and span.dropped_attributes == span.dropped_events == span.dropped_links == 0
        and type(context) is SpanContext
        and (context.trace_id, context.span_id, context.is_remote) == tuple(context[:3])
        and context.trace_state is context[4]
        and (status.status_code, status.description)
        == (getattr(status, "_status_code", None), getattr(status, "_description", None))
    )
    return ((ReadableSpan, PreEncodedSpan), SpanContext, Status) if known else None


try:
    native.allow()
    from . import _otlp
except ImportError:  # not built (no C compiler) or SIDECAR_PURE_PYTHON: the same bytes, ~15x slower
    pass
else:
    # What it cannot write (values of unusual types, which the sidecar does not make) it
    # hands to the Python encoder, span by span: the same bytes, the same log lines.
    _otlp.configure(
        _python_encode_span,
        _python_attributes,
        _trace_state,
        tuple(_KINDS.items()),
        tuple((code, _uint(3, code.value)) for code in StatusCode),
        _layout(),
    )
    encode_span = _otlp.encode_span
    _encode_attributes = _otlp.attributes
