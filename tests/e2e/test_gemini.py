"""The OpenAI SDK through a running sidecar to a fake Gemini API upstream."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sidecar.errors import ConfigError
from sidecar.providers.gemini import SKIP_SIGNATURE

from ..fake_upstream import FakeUpstream
from ..support import (
    SPEC,
    ServerThread,
    assert_openai,
    fixture_bytes,
    fixture_json,
    iter_sse,
    serve_app,
)
from .conftest import API_KEY, API_KEY_ENV, running_sidecar, sdk, sidecar_config

MODEL = "gemini-2.5-flash"
HELLO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello"},
]


@cache
def _gemini_schema() -> dict[str, Any]:
    path = SPEC / "gemini" / "gemini-generate-content-response.schema.json"
    return json.loads(path.read_text())


def assert_gemini(payload: Any) -> None:
    schema = {**_gemini_schema(), "$ref": "#/$defs/GenerateContentResponse"}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=str)
    assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: Sequence[bytes] | None = None
    """If set, an SSE stream of these events."""


def sse_answer(raw: bytes) -> Answer:
    """Gemini's framing: each event a `data:` line ended by a CRLF pair."""
    return Answer(events=[e + b"\r\n\r\n" for e in raw.split(b"\r\n\r\n") if e.strip()])


def sse_of(*responses: dict[str, Any]) -> Answer:
    for response in responses:
        assert_gemini(response)
    return sse_answer(b"".join(b"data: " + json.dumps(r).encode() + b"\r\n\r\n" for r in responses))


def error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "status": code}}).encode()


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]
    body: Any


class FakeGemini:
    """`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`: queued
    answers, else the fixtures; every request recorded."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.calls: list[Seen] = []
        route = Route("/v1beta/models/{target:path}", self._generate, methods=["POST"])
        self.app = Starlette(routes=[route])

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def reset(self) -> None:
        self.answers.clear()
        self.calls.clear()

    async def _generate(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.calls.append(Seen(request.url.path, request.url.query, dict(request.headers), body))
        method = request.path_params["target"].rpartition(":")[2]
        if self.answers:
            answer = self.answers.popleft()
        elif method == "streamGenerateContent":
            answer = sse_answer(fixture_bytes("gemini/streamGenerateContent_alt_sse.sse"))
        elif method == "generateContent":
            answer = Answer(body=fixture_bytes("gemini/generateContent_response.json"))
        else:
            answer = Answer(404, error(404, "NOT_FOUND", f"Unknown method {method!r}."))
        if answer.events is None:
            return Response(answer.body, answer.status, answer.headers, "application/json")
        return StreamingResponse(
            _replay(answer.events), answer.status, answer.headers, "text/event-stream"
        )


async def _replay(events: Sequence[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[tuple[FakeGemini, ServerThread]]:
    fake = FakeGemini()
    with serve_app(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake_gemini(gemini_server: tuple[FakeGemini, ServerThread]) -> FakeGemini:
    fake, _ = gemini_server
    fake.reset()
    return fake


@pytest.fixture(scope="module")
def gemini_sidecar(
    gemini_server: tuple[FakeGemini, ServerThread],
    upstream_server: tuple[FakeUpstream, ServerThread],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    _, gemini = gemini_server
    _, openai_upstream = upstream_server
    config = sidecar_config(
        openai_upstream.url,
        providers={
            "gem": {
                "kind": "gemini",
                "base_url": f"{gemini.url}/v1beta",
                "api_key_env": API_KEY_ENV,
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
            }
        },
        models={"gemini": {"provider": "gem", "name": MODEL}},
        tiers={"smart": ["gemini", "small"], "solo": ["gemini"]},
        routing={"default_tier": "solo"},
    )
    with running_sidecar(config, tmp_path_factory.mktemp("gemini")) as server:
        yield server


@pytest.fixture
def client(gemini_sidecar: ServerThread) -> openai.OpenAI:
    return sdk(gemini_sidecar)


def test_plain_answer(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, temperature=0.2, max_tokens=64
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == (
        "AI learns patterns from data to make predictions or decisions."
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 11)
    assert raw.headers["x-sidecar-model"] == "gemini"
    assert_openai("CreateChatCompletionResponse", json.loads(raw.content))

    (call,) = fake_gemini.calls
    assert call.path == f"/v1beta/models/{MODEL}:generateContent"
    assert call.query == ""
    assert call.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in call.headers
    assert call.body == {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2},
    }


def test_stream(
    gemini_sidecar: ServerThread, client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    )
    assert text == "AI learns patterns from data to make predictions."
    (call,) = fake_gemini.calls
    assert (call.path, call.query) == (f"/v1beta/models/{MODEL}:streamGenerateContent", "alt=sse")
    assert call.headers["x-goog-api-key"] == API_KEY
    assert "stream" not in call.body

    request = {
        "model": "auto",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = f"{gemini_sidecar.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=request) as response:
        assert response.status_code == 200
        events = list(iter_sse(response.read()))
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 17


def test_tool_call_round_trip(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    called = fixture_json("gemini/generateContent_function_call.json")
    part = called["candidates"][0]["content"]["parts"][0]
    part["functionCall"]["name"] = "get_current_weather"
    part["thoughtSignature"] = "c2lnbmF0dXJl"
    assert_gemini(called)
    fake_gemini.queue(Answer(body=json.dumps(called).encode()))
    tools = fixture_json("openai/chat_completion_request.json")["tools"]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    (tool_call,) = first.choices[0].message.tool_calls or []
    assert tool_call.id.startswith("call_")
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    (declaration,) = fake_gemini.calls[0].body["tools"][0]["functionDeclarations"]
    assert declaration == {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "location": {
                    "type": "STRING",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    }

    # The SDK keeps the signature Gemini 3 needs back (`extra_content`) in the message.
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": '{"temperature": 22}'},
    ]
    second = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert second.choices[0].message.content
    forwarded = fake_gemini.calls[1].body["contents"]
    assert forwarded[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_current_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            }
        ],
    }
    assert forwarded[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_current_weather", "response": {"temperature": 22}}}
        ],
    }


def test_history_from_another_model_gets_the_placeholder_signature(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_from_openai",
                    "type": "function",
                    "function": {
                        "name": "get_current_weather",
                        "arguments": '{"location":"Paris"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_from_openai", "content": "22 C"},
    ]
    client.chat.completions.create(model="gemini", messages=messages)
    contents = fake_gemini.calls[0].body["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_current_weather", "response": {"output": "22 C"}}}
    ]


def test_streamed_tool_call(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    function_call = fixture_json("gemini/generateContent_function_call.json")
    fake_gemini.queue(sse_of(function_call))
    tools = fixture_json("openai/chat_completion_request.json")["tools"]
    arguments = ""
    ids = []
    finish = None
    stream = client.chat.completions.create(model="auto", messages=HELLO, tools=tools, stream=True)
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                ids += [delta.id] if delta.id else []
                arguments += (delta.function and delta.function.arguments) or ""
    assert len(ids) == 1
    assert ids[0].startswith("call_")
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"


def test_a_blocked_prompt_is_a_content_filter_answer(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": MODEL,
        "responseId": "blocked-1",
    }
    assert_gemini(blocked)
    fake_gemini.queue(Answer(body=json.dumps(blocked).encode()))
    completion = client.chat.completions.create(model="gemini", messages=HELLO)
    (choice,) = completion.choices
    assert (choice.message.content, choice.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    ("status", "body", "exception"),
    [
        (400, fixture_bytes("gemini/error_400.json"), openai.BadRequestError),
        (429, fixture_bytes("gemini/error_429.json"), openai.RateLimitError),
        (
            500,
            error(500, "INTERNAL", "An internal error has occurred."),
            openai.InternalServerError,
        ),
        (503, error(503, "UNAVAILABLE", "The model is overloaded."), openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_raises_the_matching_sdk_exception(
    client: openai.OpenAI,
    fake_gemini: FakeGemini,
    status: int,
    body: bytes,
    exception: type[openai.APIStatusError],
    stream: bool,
) -> None:
    fake_gemini.queue(Answer(status, body))
    with pytest.raises(exception) as caught:
        list(client.chat.completions.create(model="gemini", messages=HELLO, stream=stream))
    upstream_error = json.loads(body)["error"]
    assert caught.value.status_code == status
    assert caught.value.message.endswith(upstream_error["message"])
    assert caught.value.type == upstream_error["status"]
    assert_openai("ErrorResponse", {"error": caught.value.body})
    assert len(fake_gemini.calls) == 1


def test_error_event_mid_stream_raises_in_the_sdk(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    started = fixture_json("gemini/streamGenerateContent_array.json")[0]
    answer = sse_of(started)
    overloaded = b"data: " + error(503, "UNAVAILABLE", "The model is overloaded.") + b"\r\n\r\n"
    fake_gemini.queue(Answer(events=[*(answer.events or []), overloaded]))
    received = []
    with pytest.raises(openai.APIError, match="overloaded"):
        for chunk in client.chat.completions.create(model="gemini", messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "AI learns"]


@pytest.mark.parametrize("stream", [False, True])
def test_falls_back_to_an_openai_model_when_gemini_is_unavailable(
    client: openai.OpenAI,
    fake_gemini: FakeGemini,
    upstream: FakeUpstream,
    stream: bool,
) -> None:
    fake_gemini.queue(Answer(503, error(503, "UNAVAILABLE", "The model is overloaded.")))
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=HELLO, stream=stream
    )
    assert (raw.headers["x-sidecar-model"], raw.headers["x-sidecar-attempts"]) == ("small", "2")
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse())
        assert text == "Hello! How can I help?"
    else:
        assert raw.parse().choices[0].message.content == "Hello! How can I assist you today?"
    assert len(fake_gemini.calls) == 1
    assert fake_gemini.calls[0].headers["x-goog-api-key"] == API_KEY
    assert upstream.models_called() == ["gpt-4o-mini"]


def test_unknown_option_is_a_config_error(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread]
) -> None:
    config = sidecar_config(
        upstream_server[1].url,
        providers={"gem": {"kind": "gemini", "api_version": "v1"}},
    )
    with (
        pytest.raises(ConfigError, match="api_version"),
        running_sidecar(config, tmp_path),
    ):
        pass
