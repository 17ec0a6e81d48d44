"""A scripted fake of an OpenAI-compatible upstream, speaking the real wire format.

Each test queues replies; with none queued, the upstream answers like OpenAI with the
fixtures in shared/spec. Every request is recorded (headers and JSON body).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .support import fixture_bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Sequence[bytes] | None = None
    """If set, the body is streamed as these chunks, `delay` seconds apart."""
    delay: float = 0.0
    wait: float = 0.0
    """Seconds to wait before answering at all (headers included)."""
    reset_after: int | None = None
    """Break the connection after this many chunks, without ending the body."""
    content_type: str = "application/json"


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), headers or {})


def sse_reply(raw: bytes, delay: float = 0.0) -> Reply:
    """Stream an SSE payload one event at a time."""
    events = [event + b"\n\n" for event in raw.split(b"\n\n") if event.strip()]
    return Reply(chunks=events, delay=delay, content_type="text/event-stream")


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any


class FakeUpstream:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.by_model: dict[str, deque[Reply]] = {}
        self.calls: list[Call] = []
        self.chaos: Callable[[dict[str, Any]], Reply | None] | None = None
        """Consulted for every request without a queued reply: a Reply, or None for the default."""
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def queue_for(self, model: str, *replies: Reply) -> None:
        """Replies for requests naming this upstream model, before the general queue."""
        self.by_model.setdefault(model, deque()).extend(replies)

    def reset(self) -> None:
        self.chaos = None
        self.replies.clear()
        self.by_model.clear()
        self.calls.clear()

    def models_called(self) -> list[str]:
        return [call.body["model"] for call in self.calls]

    async def _chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.calls.append(Call(request.url.path, dict(request.headers), body))
        for_model = self.by_model.get(body.get("model"))
        chaos = self.chaos(body) if self.chaos and not for_model and not self.replies else None
        if for_model:
            reply = for_model.popleft()
        elif self.replies:
            reply = self.replies.popleft()
        elif chaos is not None:
            reply = chaos
        elif body.get("stream"):
            reply = sse_reply(fixture_bytes("openai/chat_completion_stream.sse"))
        else:
            reply = Reply(body=fixture_bytes("openai/chat_completion.json"))
        if reply.wait:
            await asyncio.sleep(reply.wait)
        if reply.chunks is None:
            return Response(reply.body, reply.status, reply.headers, media_type=reply.content_type)
        return StreamingResponse(
            _paced(reply.chunks, reply.delay, reply.reset_after),
            reply.status,
            reply.headers,
            media_type=reply.content_type,
        )


class ConnectionBroken(Exception):
    """Raised inside a streamed body: uvicorn drops the connection mid-body."""


async def _paced(
    chunks: Sequence[bytes], delay: float, reset_after: int | None = None
) -> AsyncIterator[bytes]:
    for index, chunk in enumerate(chunks):
        if reset_after is not None and index == reset_after:
            raise ConnectionBroken
        if delay and index:
            await asyncio.sleep(delay)
        yield chunk
