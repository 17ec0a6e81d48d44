"""Server-sent events: a decoder for upstream streams and the encoder for ours.

The decoder is incremental and byte-based: upstream chunks split events anywhere, and
line ends may be `\\n` (OpenAI, vLLM) or `\\r\\n` (Gemini).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

DONE = b"[DONE]"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Event:
    data: bytes
    event: str | None = None


class Decoder:
    """Feed bytes, get the complete events they finish."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk
        if not self._started and buffer:
            if len(buffer) < 3 and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            buffer = buffer.removeprefix(_BOM)
        if b"\r" in buffer:
            # A lone trailing \r may be the first half of a \r\n split across chunks.
            keep_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buffer = buffer[:-1] + b"\r"
        events = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = _parse(buffer[start:end])
            if event is not None:
                events.append(event)
            start = end + 2
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[Event]:
        """The last event of a stream that ended without a blank line, if any."""
        rest, self._buffer = self._buffer.rstrip(b"\r\n"), b""
        event = _parse(rest) if rest else None
        return [event] if event is not None else []


def _parse(block: bytes) -> Event | None:
    if block.startswith(b"data:") and b"\n" not in block:  # the common case, one data line
        return Event(block[6:] if block[5:6] == b" " else block[5:])
    data: list[bytes] = []
    event = None
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data:  # the SSE spec dispatches no event without data
        return None
    return Event(b"\n".join(data), event)


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    decoder = Decoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event


def encode(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


DONE_EVENT = encode(DONE)
