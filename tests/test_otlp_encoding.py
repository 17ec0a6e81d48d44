"""The span encoder writes the message the SDK's OTLP encoder builds, field for field.

Every test comparing with the SDK runs against both encoders, the C one (`_otlp`, where it
is built) and its Python twin; the property tests below check that the two write the same
bytes and the same log lines, or raise the same exception, for any input.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from sidecar.native import disabled as pure_python
from sidecar.telemetry import protobuf
from sidecar.telemetry.otlp_grpc import GrpcSpanExporter
from sidecar.telemetry.protobuf import encode_spans

RESOURCE = Resource({"service.name": "llm-sidecar", "service.version": "1.0", "pid": 7})
OTHER_RESOURCE = Resource({"service.name": "other"}, schema_url="https://opentelemetry.io/s/1")
SCOPE = InstrumentationScope("sidecar", "1.0")
OTHER_SCOPE = InstrumentationScope("other", None, "https://example.com/schema")

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_PARENT = SpanContext(TRACE_ID, 0x00F067AA0BA902B7, is_remote=True)


def _native() -> Any:
    if pure_python():  # protobuf.py did not set the extension up
        pytest.skip("SIDECAR_PURE_PYTHON is set")
    return pytest.importorskip("sidecar.telemetry._otlp")


@pytest.fixture(params=["c", "python"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The encoder `encode_spans` uses: the C one, or the Python twin."""
    if request.param == "c":
        native = _native()
        monkeypatch.setattr(protobuf, "encode_span", native.encode_span)
        monkeypatch.setattr(protobuf, "_encode_attributes", native.attributes)
    else:
        monkeypatch.setattr(protobuf, "encode_span", protobuf._python_encode_span)
        monkeypatch.setattr(protobuf, "_encode_attributes", protobuf._python_attributes)
    return str(request.param)


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


@pytest.mark.usefixtures("implementation")
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


@pytest.mark.usefixtures("implementation")
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


@pytest.mark.usefixtures("implementation")
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


@pytest.mark.usefixtures("implementation")
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


def test_the_string_cache_empties_when_full(
    monkeypatch: pytest.MonkeyPatch, implementation: str
) -> None:
    if implementation != "python":
        pytest.skip("the cache is the Python encoder's")
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


@pytest.mark.usefixtures("implementation")
def test_no_spans_is_an_empty_request() -> None:
    assert encode_spans([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == sdk_encode([])


# The C encoder against its Python twin.


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _outcome(encode: Callable[..., bytes], *args: Any) -> tuple[object, list[str]]:
    """What `encode` returns, or the exception it raises, and what it logs."""
    logged = _Logged()
    logger = logging.getLogger("sidecar")
    logger.addHandler(logged)
    try:
        result: object = encode(*args)
    except Exception as error:
        result = (type(error), str(error))
    finally:
        logger.removeHandler(logged)
    return result, logged.lines


def _same(native: Callable[..., bytes], twin: Callable[..., bytes], *args: Any) -> object:
    ours, twins = _outcome(native, *args), _outcome(twin, *args)
    assert ours == twins
    return ours[0]


class _Str(str):
    def __str__(self) -> str:
        return "converted " + self


class _Int(enum.IntEnum):
    OK = 200


class _Float(float):
    pass


class _Key(str):
    pass


_LONG_TEXT = st.text(min_size=120, max_size=300)  # lengths of two-byte varints
_SCALARS = (
    st.text(alphabet=st.characters(exclude_categories=()), max_size=8)  # lone surrogates too
    | st.text(max_size=8)
    | _LONG_TEXT
    | st.integers()
    | st.integers(-(1 << 63), (1 << 63) - 1)
    | st.sampled_from([(1 << 63) - 1, -(1 << 63), 1 << 63, -(1 << 63) - 1, 1 << 64, -1, 127, 128])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, -math.inf, math.inf, -0.0, 5e-324])
    | st.booleans()
    | st.none()
    | st.binary(max_size=300)
    | st.builds(_Str, st.text(max_size=4))
    | st.just(_Int.OK)
    | st.builds(_Float, st.floats())
    | st.sampled_from([object(), bytearray(b"ab"), range(3), {1, 2}, b"\xff".hex])
)
_KEYS = (
    st.text(max_size=12)
    | st.text(alphabet=st.characters(exclude_categories=()), max_size=4)
    | _LONG_TEXT
    | st.builds(_Key, st.text(max_size=4))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(_KEYS | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=12,
)
_PLAIN = st.recursive(  # only what the C encoder writes itself
    st.text(max_size=8)
    | _LONG_TEXT
    | st.integers(-(1 << 63), (1 << 63) - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.binary(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mappings(values: st.SearchStrategy[Any], keys: st.SearchStrategy[Any] = _KEYS) -> Any:
    plain = st.dictionaries(st.text(max_size=12) | _LONG_TEXT, values, max_size=8)
    any_keys = st.dictionaries(keys, values, max_size=8)
    return (
        st.none()
        | plain
        | any_keys
        | plain.map(MappingProxyType)
        | any_keys.map(lambda d: BoundedAttributes(maxlen=None, attributes=d, immutable=False))
    )


# Each example builds whole spans: 60 keep the three properties at ~10 s together.
_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_settings
@given(st.sampled_from([1, 3, 4, 9, 15, 16, 1 << 20]), _mappings(_VALUES))
def test_c_attributes_equal_the_python_twin(number: int, attributes: Any) -> None:
    _same(_native().attributes, protobuf._python_attributes, number, attributes)


_IDS = st.integers(0, (1 << 64) - 1)
_TRACE_IDS = st.integers(0, (1 << 128) - 1)
_TIMES = st.none() | st.integers(0, (1 << 64) - 1)
_COUNTS = st.none() | st.integers(0, (1 << 64) - 1)
_NAMES = st.none() | st.text(max_size=10) | _LONG_TEXT


class _Plain:
    """What the C encoder writes itself: the SDK's types, any values of them."""

    ids = _IDS
    trace_ids = _TRACE_IDS
    times = _TIMES
    counts = _COUNTS
    remote: st.SearchStrategy[Any] = st.booleans()
    names = _NAMES
    keys = st.text(max_size=12)
    values = _PLAIN


class _Any(_Plain):
    """Anything: some of it the Python encoder writes, or leaves out, or raises on."""

    ids = _IDS | st.sampled_from([1 << 64, -1])
    trace_ids = _TRACE_IDS | st.sampled_from([1 << 128, -1, 1 << 64])
    times = _TIMES | st.sampled_from([-5, 1 << 64, 1.5])
    counts = st.none() | st.integers(0, 1 << 70) | st.sampled_from([-1, True])
    remote = st.booleans() | st.just(1)
    names = _NAMES | st.builds(_Str, st.text(max_size=3)) | st.just("\ud800")
    keys = _KEYS
    values = _VALUES


@st.composite
def _contexts(draw: st.DrawFn, kind: type[_Plain]) -> SpanContext:
    state = draw(
        st.lists(
            st.tuples(
                st.text("abcxyz", min_size=1, max_size=8),  # valid keys and values only
                st.text("abc:xyz0123", min_size=1, max_size=8),
            ),
            max_size=3,
            unique_by=lambda kv: kv[0],
        )
    )
    return SpanContext(
        draw(kind.trace_ids), draw(kind.ids), draw(kind.remote), TraceFlags(1), TraceState(state)
    )


class _Span(ReadableSpan):
    """A span whose counts are whatever the test draws."""

    def __init__(self, counts: tuple[Any, Any, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counts = counts

    @property
    def dropped_attributes(self) -> Any:
        return self._counts[0]

    @property
    def dropped_events(self) -> Any:
        return self._counts[1]

    @property
    def dropped_links(self) -> Any:
        return self._counts[2]


@st.composite
def _spans(draw: st.DrawFn, kind: type[_Plain]) -> ReadableSpan:
    mappings = _mappings(kind.values, kind.keys)
    events = [
        Event(draw(st.text(max_size=10) | _LONG_TEXT), draw(mappings), draw(kind.times))
        for _ in range(draw(st.integers(0, 3)))
    ]
    links = [Link(draw(_contexts(kind)), draw(mappings)) for _ in range(draw(st.integers(0, 2)))]
    fields: dict[str, Any] = dict(
        name=draw(kind.names),
        context=draw(_contexts(kind)),
        parent=draw(st.none() | _contexts(kind)),
        attributes=draw(mappings),
        events=draw(st.sampled_from([list, tuple]))(events),
        links=links,
        kind=draw(st.sampled_from(SpanKind)),
        status=draw(
            st.builds(Status, st.sampled_from([StatusCode.UNSET, StatusCode.OK]))
            | st.builds(Status, st.just(StatusCode.ERROR), st.none() | st.text(max_size=12))
        ),
        start_time=draw(kind.times),
        end_time=draw(kind.times),
        resource=RESOURCE,
    )
    if draw(st.booleans()):
        return _Span((draw(kind.counts), draw(kind.counts), draw(kind.counts)), **fields)
    return ReadableSpan(**fields)


@_settings
@given(_spans(_Any))
def test_c_spans_equal_the_python_twin(span: ReadableSpan) -> None:
    _same(_native().encode_span, protobuf._python_encode_span, span)


@contextlib.contextmanager
def _fallbacks(span: Callable[..., bytes], attributes: Callable[..., bytes]) -> Iterator[None]:
    """The C encoder, handing what it does not write to `span` and `attributes`."""
    native = _native()
    kinds = tuple(protobuf._KINDS.items())
    codes = tuple((code, protobuf._uint(3, code.value)) for code in StatusCode)
    layout = protobuf._layout()
    native.configure(span, attributes, protobuf._trace_state, kinds, codes, layout)
    try:
        yield
    finally:
        native.configure(
            protobuf._python_encode_span,
            protobuf._python_attributes,
            protobuf._trace_state,
            kinds,
            codes,
            layout,
        )


def _fail(*args: Any) -> bytes:
    raise AssertionError("the Python encoder was called")


@pytest.fixture
def no_fallback() -> Iterator[None]:
    """The C encoder, with its fallbacks failing: what it writes, it writes itself."""
    with _fallbacks(_fail, _fail):
        yield


@_settings
@given(_spans(_Plain))
def test_c_writes_plain_spans_itself(span: ReadableSpan) -> None:
    # Spans of the SDK's types holding plain values (what the sidecar makes), with any
    # ids, times, counts, events, links, trace states, statuses and names, never reach
    # the Python encoder.
    expected = protobuf._python_encode_span(span)
    with _fallbacks(_fail, _fail):
        assert _native().encode_span(span) == expected


def test_c_writes_the_sidecars_spans_itself(no_fallback: None) -> None:
    span = _span(
        parent=REMOTE_PARENT,
        kind=SpanKind.SERVER,
        attributes={
            "http.response.status_code": 200,
            "sidecar.cost.usd": 1.3e-4,
            "gen_ai.request.stream": False,
            "gen_ai.response.finish_reasons": ("stop",),
            "negative": -1,
            "nested": {"a": [1, "two", 3.0, None, b"\x00"]},
            "long": "x" * 5000,
        },
        events=[Event("sidecar.classifier.failed", {"k": "v"}, 1)],
        links=[Link(SpanContext(1, 2, is_remote=True), {"x": 1})],
        status=Status(StatusCode.ERROR, "upstream answered 503"),
    )
    assert _native().encode_span(span) == protobuf._python_encode_span(span)
    assert _native().attributes(1, RESOURCE.attributes) == protobuf._python_attributes(
        1, RESOURCE.attributes
    )


def test_c_hands_unusual_values_to_the_python_encoder(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="sidecar")
    handed: list[ReadableSpan] = []

    def python(span: ReadableSpan) -> bytes:
        handed.append(span)
        return protobuf._python_encode_span(span)

    nested: list[Any] = []
    for _ in range(40):  # deeper than the C encoder goes
        nested = [nested]
    for value in [_Str("s"), _Int.OK, _Float(1.5), 1 << 63, "\ud800", object(), nested]:
        span = _span(attributes={"before": 1, "value": value, "after": "x"})
        caplog.clear()
        with _fallbacks(python, protobuf._python_attributes):
            ours = _native().encode_span(span)
        assert handed[-1] is span
        our_log = caplog.text
        caplog.clear()
        assert ours == protobuf._python_encode_span(span)
        assert our_log == caplog.text
    deep: list[Any] = []
    deep.append(deep)  # a list that holds itself: the Python encoder's recursion limit
    assert _same(_native().encode_span, protobuf._python_encode_span, _span(attributes={"d": deep}))


def test_c_raises_what_the_python_encoder_raises() -> None:
    # A key that has no UTF-8 form, with an int value: the Python encoder raises.
    span = _span(attributes={"ok": "x", "\udc80": 1})
    result = _same(_native().encode_span, protobuf._python_encode_span, span)
    assert isinstance(result, tuple)
    assert result[0] is UnicodeEncodeError
    nameless = _same(_native().encode_span, protobuf._python_encode_span, _span("\ud800"))
    assert isinstance(nameless, tuple)
    assert nameless[0] is UnicodeEncodeError
    assert _native().attributes(-1, {"a": 1}) == protobuf._python_attributes(-1, {"a": 1})


def test_the_sdk_keeps_its_fields_where_the_c_encoder_reads_them() -> None:
    # Else the C encoder still writes the same bytes, through the properties, ~4 µs a span
    # slower: an SDK upgrade that moves them should be noticed here, not in a benchmark.
    assert protobuf._layout() == ((ReadableSpan, protobuf.PreEncodedSpan), SpanContext, Status)


def test_the_c_encoder_is_the_one_in_use_where_it_is_built() -> None:
    native = _native()
    assert protobuf.encode_span is native.encode_span
    assert protobuf._encode_attributes is native.attributes
