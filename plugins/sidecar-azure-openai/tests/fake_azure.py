"""A fake Azure OpenAI resource speaking Azure's wire format, and real servers on loopback.

The fake serves both address forms (`/openai/deployments/{deployment}/chat/completions`
with `api-version`, and `/openai/v1/chat/completions`), checks the `api-key` header or an
Entra ID bearer token, records every request, and answers with queued replies or, by
default, the way Azure does: content-filter results on every choice and, in a stream, a
first chunk with empty `choices` and `prompt_filter_results`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

API_KEY = "azure-key-0123456789abcdef"
ENTRA_TOKEN = "eyJ0eXAiOiJKV1Qi.entra-token"
UNDERLYING_MODEL = "gpt-4o-2024-08-06"
SAFE = {"filtered": False, "severity": "safe"}
FILTER_RESULTS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
USAGE = {
    "completion_tokens": 7,
    "prompt_tokens": 9,
    "total_tokens": 16,
    "completion_tokens_details": {"reasoning_tokens": 0},
    "prompt_tokens_details": {"cached_tokens": 0},
}
CONTENT_FILTER_ERROR = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy. Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                **FILTER_RESULTS,
                "violence": {"filtered": True, "severity": "high"},
            },
        },
    }
}


def rate_limited(deployment: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "429",
            "message": f"Requests to the ChatCompletions_Create Operation under Azure OpenAI "
            f"API version 2024-10-21 have exceeded token rate limit of your current "
            f"deployment {deployment}. Please retry after 60 seconds.",
        }
    }


def completion(text: str = "Hello from Azure.") -> dict[str, Any]:
    return {
        "choices": [
            {
                "content_filter_results": FILTER_RESULTS,
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {"content": text, "refusal": None, "role": "assistant"},
            }
        ],
        "created": 1731000000,
        "id": "chatcmpl-AzureAbc123",
        "model": UNDERLYING_MODEL,
        "object": "chat.completion",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}],
        "system_fingerprint": "fp_azure01",
        "usage": USAGE,
    }


def stream_events(
    pieces: tuple[str, ...] = ("Hello", " from", " Azure."),
    include_usage: bool = True,
    annotations: bool = False,
) -> list[bytes]:
    """A streamed answer as Azure sends it, one SSE event per item, `[DONE]` included.

    `annotations`: the asynchronous content filter's extra chunks, whose choices have no
    `delta`, one of them after the finishing chunk."""
    base = {
        "created": 1731000000,
        "id": "chatcmpl-AzureAbc123",
        "model": UNDERLYING_MODEL,
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_azure01",
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"content_filter_results": {}, "delta": delta, "finish_reason": finish}
        return {**base, "choices": [{**choice, "index": 0, "logprobs": None}]}

    annotation = {
        **base,
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_results": FILTER_RESULTS,
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 9},
            }
        ],
    }
    payloads: list[dict[str, Any]] = [
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": FILTER_RESULTS}
            ],
        },
        chunk({"content": "", "refusal": None, "role": "assistant"}),
    ]
    payloads += [chunk({"content": piece}) for piece in pieces]
    if annotations:
        payloads.append(annotation)
    payloads.append(chunk({}, "stop"))
    if annotations:
        payloads.append(annotation)
    if include_usage:
        payloads.append({**base, "choices": [], "usage": USAGE})
    return [b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads] + [b"data: [DONE]\n\n"]


@dataclass
class Reply:
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[bytes] | None = None


@dataclass
class Call:
    path: str
    api_version: str | None
    headers: dict[str, str]
    body: dict[str, Any]


class FakeAzure:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.replies: dict[str, deque[Reply]] = {}
        self.app = Starlette(
            routes=[
                Route(
                    "/openai/deployments/{deployment}/chat/completions",
                    self._deployment,
                    methods=["POST"],
                ),
                Route("/openai/v1/chat/completions", self._v1, methods=["POST"]),
            ]
        )

    def queue(self, deployment: str, *replies: Reply) -> None:
        self.replies.setdefault(deployment, deque()).extend(replies)

    def reset(self) -> None:
        self.calls.clear()
        self.replies.clear()

    async def _deployment(self, request: Request) -> Response:
        if "api-version" not in request.query_params:
            return _error(404, {"error": {"code": "404", "message": "Resource not found"}})
        return await self._answer(request, request.path_params["deployment"])

    async def _v1(self, request: Request) -> Response:
        return await self._answer(request, None)

    async def _answer(self, request: Request, deployment: str | None) -> Response:
        body = json.loads(await request.body())
        self.calls.append(
            Call(
                request.url.path,
                request.query_params.get("api-version"),
                dict(request.headers),
                body,
            )
        )
        deployment = deployment or body.get("model", "")
        key = request.headers.get("api-key")
        bearer = request.headers.get("authorization")
        if key != API_KEY and bearer != f"Bearer {ENTRA_TOKEN}":
            message = (
                "Access denied due to invalid subscription key or wrong API endpoint. "
                "Make sure to provide a valid key for an active subscription and use a "
                "correct regional API endpoint for your resource."
            )
            return _error(401, {"error": {"code": "401", "message": message}})
        queued = self.replies.get(deployment)
        if queued:
            reply = queued.popleft()
        elif body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            reply = Reply(events=stream_events(include_usage=include_usage))
        else:
            reply = Reply(payload=completion())
        if reply.events is not None:
            return StreamingResponse(
                _each(reply.events), reply.status, reply.headers, media_type="text/event-stream"
            )
        return Response(
            json.dumps(reply.payload).encode(),
            reply.status,
            reply.headers,
            media_type="application/json",
        )


def _error(status: int, payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload).encode(), status, media_type="application/json")


async def _each(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


class ServerThread:
    """A real uvicorn server on 127.0.0.1 in a thread, on a socket bound before it starts."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.closers: list[Callable[[], object]] = []
        """Clients of this server, closed when it stops."""

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for close in self.closers:
            close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()
        assert not self.thread.is_alive(), "server did not stop"


def serve(app: Any) -> ServerThread:
    return ServerThread(uvicorn.Config(app, log_level="warning", lifespan="off"))
