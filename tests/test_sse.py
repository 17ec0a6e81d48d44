"""`sse.Decoder`: events come out whole wherever the upstream splits its bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.wire import sse
from sidecar.wire.sse import DONE_EVENT, Decoder, Event, encode

FIXTURES = (Path(__file__).resolve().parents[1] / "../shared/spec/fixtures").resolve()
OPENAI = (FIXTURES / "openai/chat_completion_stream.sse").read_bytes()
GEMINI = (FIXTURES / "gemini/streamGenerateContent_alt_sse.sse").read_bytes()
ANTHROPIC = (FIXTURES / "anthropic/message_stream.sse").read_bytes()


def _expected(payload: bytes, separator: bytes) -> list[Event]:
    """An independent reading of a fixture: blocks of `event:`/`data:` lines."""
    events = []
    for block in payload.split(separator * 2):
        if not block.strip():
            continue
        name, data = None, b""
        for line in block.split(separator):
            if line.startswith(b"event: "):
                name = line[len(b"event: ") :].decode()
            elif line.startswith(b"data: "):
                data = line[len(b"data: ") :]
        events.append(Event(data, name))
    return events


OPENAI_EVENTS = _expected(OPENAI, b"\n")
GEMINI_EVENTS = _expected(GEMINI, b"\r\n")
ANTHROPIC_EVENTS = _expected(ANTHROPIC, b"\n")


def decode(*chunks: bytes) -> list[Event]:
    decoder = Decoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def test_fixture_readings_are_plausible() -> None:
    assert len(OPENAI_EVENTS) == 7
    assert OPENAI_EVENTS[-1] == Event(b"[DONE]")
    assert all(json.loads(e.data)["object"] == "chat.completion.chunk" for e in OPENAI_EVENTS[:-1])
    assert len(GEMINI_EVENTS) == 3
    assert all(b"\r" not in e.data for e in GEMINI_EVENTS)
    assert ANTHROPIC_EVENTS[0].event == "message_start"
    assert ANTHROPIC_EVENTS[-1] == Event(b'{"type":"message_stop"}', "message_stop")
    assert all(json.loads(e.data)["type"] == e.event for e in ANTHROPIC_EVENTS)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(OPENAI, OPENAI_EVENTS, id="openai"),
        pytest.param(GEMINI, GEMINI_EVENTS, id="gemini-crlf"),
        pytest.param(ANTHROPIC, ANTHROPIC_EVENTS, id="anthropic-event-lines"),
    ],
)
def test_whole_payload_in_one_feed(payload: bytes, expected: list[Event]) -> None:
    decoder = Decoder()
    assert decoder.feed(payload) == expected
    assert decoder.flush() == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(OPENAI, OPENAI_EVENTS, id="openai"),
        pytest.param(GEMINI, GEMINI_EVENTS, id="gemini-crlf"),
        pytest.param(ANTHROPIC, ANTHROPIC_EVENTS, id="anthropic"),
    ],
)
def test_split_at_every_offset(payload: bytes, expected: list[Event]) -> None:
    for cut in range(len(payload) + 1):
        decoder = Decoder()
        first = decoder.feed(payload[:cut])
        second = decoder.feed(payload[cut:])
        assert first + second == expected, f"split at byte {cut}"
        assert decoder.flush() == []
        # No event is held back once its blank line has arrived.
        assert len(first) == payload[:cut].replace(b"\r\n", b"\n").count(b"\n\n"), cut


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(OPENAI, OPENAI_EVENTS, id="openai"),
        pytest.param(GEMINI, GEMINI_EVENTS, id="gemini-crlf"),
        pytest.param(ANTHROPIC, ANTHROPIC_EVENTS, id="anthropic"),
    ],
)
def test_one_byte_at_a_time(payload: bytes, expected: list[Event]) -> None:
    assert decode(*(payload[i : i + 1] for i in range(len(payload)))) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(b"data: x\n\n", [Event(b"x")], id="plain"),
        pytest.param(b"data:x\n\n", [Event(b"x")], id="no-space"),
        pytest.param(b"data:  x\n\n", [Event(b" x")], id="only-one-space-removed"),
        pytest.param(b"data\n\n", [Event(b"")], id="field-without-colon"),
        pytest.param(b"data: a\ndata: b\n\n", [Event(b"a\nb")], id="multi-line"),
        pytest.param(b"data:a\ndata:\ndata: c\n\n", [Event(b"a\n\nc")], id="multi-line-empty"),
        pytest.param(b"event: ping\ndata:x\n\n", [Event(b"x", "ping")], id="event-no-space"),
        pytest.param(b"data: x\nevent: delta\n\n", [Event(b"x", "delta")], id="event-after-data"),
        pytest.param(b": keepalive\n\n", [], id="comment-only"),
        pytest.param(b":\n\ndata: x\n\n", [Event(b"x")], id="empty-comment"),
        pytest.param(b": hi\ndata: x\n: there\n\n", [Event(b"x")], id="comments-inside"),
        pytest.param(b"id: 7\nretry: 10\ndata: x\n\n", [Event(b"x")], id="id-retry-ignored"),
        pytest.param(b"data: x\n\n\n\ndata: y\n\n", [Event(b"x"), Event(b"y")], id="extra-blanks"),
        pytest.param(b"data: a\r\rdata: b\r\r", [Event(b"a"), Event(b"b")], id="lone-cr"),
        pytest.param(b"data: a\r\n\r\ndata: b\n\n", [Event(b"a"), Event(b"b")], id="mixed-ends"),
        pytest.param(b'data: {"a":"b:c"}\n\n', [Event(b'{"a":"b:c"}')], id="colon-in-value"),
    ],
)
def test_field_parsing(payload: bytes, expected: list[Event]) -> None:
    assert decode(payload) == expected
    assert decode(*(payload[i : i + 1] for i in range(len(payload)))) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"data: last", [Event(b"last")]),
        (b"data: last\n", [Event(b"last")]),
        (b"data: last\r\n", [Event(b"last")]),
        (b"data: last\r", [Event(b"last")]),
        (b"event: stop\ndata: {}", [Event(b"{}", "stop")]),
        (b"data: a\n\ndata: b", [Event(b"a"), Event(b"b")]),
        (b": only a comment", []),
        (b"", []),
    ],
)
def test_flush_returns_the_unterminated_last_event(payload: bytes, expected: list[Event]) -> None:
    decoder = Decoder()
    fed = decoder.feed(payload)
    assert fed + decoder.flush() == expected
    assert decoder.flush() == []


def test_flush_holds_nothing_back_after_a_complete_event() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: x\n\n") == [Event(b"x")]
    assert decoder.flush() == []


def test_flush_resets_the_decoder() -> None:
    decoder = Decoder()
    decoder.feed(b"data: old")
    assert decoder.flush() == [Event(b"old")]
    assert decoder.feed(b"data: new\n\n") == [Event(b"new")]


def test_events_async_iterator() -> None:
    truncated = ANTHROPIC[:-1]  # the stream lacks its final blank line

    async def chunks() -> AsyncIterator[bytes]:
        yield b""
        yield truncated[:100]
        yield truncated[100:333]
        yield truncated[333:]

    async def collect() -> list[Event]:
        return [event async for event in sse.events(chunks())]

    # The last event still comes out, from the flush.
    assert asyncio.run(collect()) == ANTHROPIC_EVENTS


def test_encode() -> None:
    assert encode(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode(b"") == b"data: \n\n"


def test_done_event() -> None:
    assert DONE_EVENT == b"data: [DONE]\n\n"
    assert decode(DONE_EVENT) == [Event(sse.DONE)]


@pytest.mark.parametrize("data", [b"x", b"", b" leading space", b'{"k":"v: w"}', b"[DONE]"])
def test_encode_round_trips(data: bytes) -> None:
    assert decode(encode(data)) == [Event(data)]


def test_byte_order_mark_is_dropped_even_when_split() -> None:
    decoder = Decoder()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [Event(b"x")]


def test_block_without_data_dispatches_nothing() -> None:
    assert Decoder().feed(b"event: ping\n\ndata: x\n\n") == [Event(b"x")]
