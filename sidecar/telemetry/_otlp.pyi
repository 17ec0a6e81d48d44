from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

def configure(
    span: Callable[[ReadableSpan], bytes],
    attributes: Callable[[int, Mapping[str, Any] | None], bytes],
    trace_state: Callable[[SpanContext], str],
    kinds: tuple[tuple[SpanKind, bytes], ...],
    statuses: tuple[tuple[StatusCode, bytes], ...],
    layout: tuple[tuple[type, ...], type, type] | None,
    /,
) -> None: ...
def encode_span(span: ReadableSpan, /) -> bytes: ...
def attributes(number: int, attributes: Mapping[str, Any] | None, /) -> bytes: ...
