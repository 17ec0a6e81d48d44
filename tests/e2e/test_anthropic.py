"""The OpenAI SDK through a running sidecar to a fake Anthropic Messages API upstream."""

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

import sidecar.providers.anthropic
from sidecar.errors import ConfigError

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

HELLO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello"},
]


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: Sequence[bytes] | None = None
    """If set, an SSE stream of these events."""


def sse_answer(raw: bytes) -> Answer:
    return Answer(events=[event + b"\n\n" for event in raw.split(b"\n\n") if event.strip()])


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


class FakeAnthropic:
    """`POST /v1/messages`: queued answers, else the fixtures; every request recorded."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.calls: list[Seen] = []
        self.app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def reset(self) -> None:
        self.answers.clear()
        self.calls.clear()

    async def _messages(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.calls.append(Seen(request.url.path, dict(request.headers), body))
        if self.answers:
            answer = self.answers.popleft()
        elif body.get("stream"):
            answer = sse_answer(fixture_bytes("anthropic/message_stream.sse"))
        else:
            answer = Answer(body=fixture_bytes("anthropic/message.json"))
        if answer.events is None:
            return Response(answer.body, answer.status, answer.headers, "application/json")
        return StreamingResponse(
            _replay(answer.events), answer.status, answer.headers, "text/event-stream"
        )


async def _replay(events: Sequence[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


@cache
def _anthropic_schema() -> dict[str, Any]:
    return json.loads((SPEC / "anthropic" / "anthropic-messages.schema.json").read_text())


def assert_anthropic_request(payload: Any) -> None:
    schema = {**_anthropic_schema(), "$ref": "#/$defs/MessageCreateParams"}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=str)
    assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[tuple[FakeAnthropic, ServerThread]]:
    fake = FakeAnthropic()
    with serve_app(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake_anthropic(anthropic_server: tuple[FakeAnthropic, ServerThread]) -> FakeAnthropic:
    fake, _ = anthropic_server
    fake.reset()
    return fake


@pytest.fixture(scope="module")
def anthropic_sidecar(
    anthropic_server: tuple[FakeAnthropic, ServerThread],
    upstream_server: tuple[FakeUpstream, ServerThread],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    _, anthropic = anthropic_server
    _, openai_upstream = upstream_server
    config = sidecar_config(
        openai_upstream.url,
        providers={
            "anth": {
                "kind": "anthropic",
                "base_url": f"{anthropic.url}/v1",
                "api_key_env": API_KEY_ENV,
                "anthropic_version": "2023-06-01",
                "default_max_tokens": 512,
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
            }
        },
        models={"claude": {"provider": "anth", "name": "claude-sonnet-4-5"}},
        tiers={"smart": ["claude", "small"], "solo": ["claude"]},
        routing={"default_tier": "solo"},
    )
    plugins = (("anthropic", sidecar.providers.anthropic),)
    with running_sidecar(config, tmp_path_factory.mktemp("anthropic"), plugins) as server:
        yield server


@pytest.fixture
def client(anthropic_sidecar: ServerThread) -> openai.OpenAI:
    return sdk(anthropic_sidecar)


def test_plain_answer(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, temperature=0.2, user="u-1"
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 12)
    assert raw.headers["x-sidecar-model"] == "claude"
    assert_openai("CreateChatCompletionResponse", json.loads(raw.content))

    (call,) = fake_anthropic.calls
    assert call.path == "/v1/messages"
    assert call.headers["x-api-key"] == API_KEY
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in call.headers
    assert_anthropic_request(call.body)
    assert call.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Say hello"}],
        "temperature": 0.2,
        "metadata": {"user_id": "u-1"},
    }


def test_stream(
    anthropic_sidecar: ServerThread, client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    )
    assert text == "Hello there!"
    assert fake_anthropic.calls[0].body["stream"] is True
    assert_anthropic_request(fake_anthropic.calls[0].body)

    request = {
        "model": "auto",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = f"{anthropic_sidecar.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=request) as response:
        assert response.status_code == 200
        events = list(iter_sse(response.read()))
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 17


def test_tool_call_round_trip(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(Answer(body=fixture_bytes("anthropic/message_tool_use.json")))
    tools = fixture_json("openai/chat_completion_request.json")["tools"]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.id == "toolu_01NRLabsLyVHZPKxbKvkfSMn"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    sent_tools = fake_anthropic.calls[0].body["tools"]
    assert [t["name"] for t in sent_tools] == [t["function"]["name"] for t in tools]
    assert sent_tools[0]["input_schema"] == tools[0]["function"]["parameters"]

    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 22}'},
    ]
    second = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert second.choices[0].message.content
    forwarded = fake_anthropic.calls[1].body
    assert_anthropic_request(forwarded)
    assert forwarded["messages"][1]["content"][-1] == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": {"location": "Paris"},
    }
    assert forwarded["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": '{"temperature": 22}'}
        ],
    }


def test_streamed_tool_call(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(sse_answer(fixture_bytes("anthropic/message_stream_tool_use.sse")))
    tools = fixture_json("openai/chat_completion_request.json")["tools"]
    arguments = ""
    ids = []
    finish = None
    stream = client.chat.completions.create(model="auto", messages=HELLO, tools=tools, stream=True)
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tool_call in choice.delta.tool_calls or []:
                ids += [tool_call.id] if tool_call.id else []
                arguments += (tool_call.function and tool_call.function.arguments) or ""
    assert ids == ["toolu_01NRLabsLyVHZPKxbKvkfSMn"]
    assert json.loads(arguments) == {"location": "Paris"}
    assert finish == "tool_calls"


@pytest.mark.parametrize(
    ("status", "fixture", "exception"),
    [
        (400, "anthropic/error_400.json", openai.BadRequestError),
        (401, "anthropic/error_401.json", openai.AuthenticationError),
        (429, "anthropic/error_429.json", openai.RateLimitError),
        (529, "anthropic/error_529.json", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_raises_the_matching_sdk_exception(
    client: openai.OpenAI,
    fake_anthropic: FakeAnthropic,
    status: int,
    fixture: str,
    exception: type[openai.APIStatusError],
    stream: bool,
) -> None:
    # A Retry-After longer than routing.max_retry_wait_seconds: passed on, not waited out.
    headers = {"retry-after": "30"} if status == 429 else {}
    fake_anthropic.queue(Answer(status, fixture_bytes(fixture), headers))
    with pytest.raises(exception) as caught:
        list(client.chat.completions.create(model="claude", messages=HELLO, stream=stream))
    error = fixture_json(fixture)["error"]
    assert caught.value.status_code == status
    assert caught.value.message.endswith(error["message"])
    assert caught.value.type == error["type"]
    assert_openai("ErrorResponse", {"error": caught.value.body})
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "30"
    assert len(fake_anthropic.calls) == 1


def test_error_event_mid_stream_raises_in_the_sdk(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.queue(sse_answer(fixture_bytes("anthropic/message_stream_error.sse")))
    received = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in client.chat.completions.create(model="claude", messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hel"]


@pytest.mark.parametrize("stream", [False, True])
def test_falls_back_to_an_openai_model_when_anthropic_is_overloaded(
    client: openai.OpenAI,
    fake_anthropic: FakeAnthropic,
    upstream: FakeUpstream,
    stream: bool,
) -> None:
    fake_anthropic.queue(Answer(529, fixture_bytes("anthropic/error_529.json")))
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=HELLO, stream=stream
    )
    assert (raw.headers["x-sidecar-model"], raw.headers["x-sidecar-attempts"]) == ("small", "2")
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse())
        assert text == "Hello! How can I help?"
    else:
        assert raw.parse().choices[0].message.content == "Hello! How can I assist you today?"
    assert len(fake_anthropic.calls) == 1
    assert upstream.models_called() == ["gpt-4o-mini"]


def test_unknown_option_is_a_config_error(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread]
) -> None:
    config = sidecar_config(
        upstream_server[1].url,
        providers={"anth": {"kind": "anthropic", "anthropic_versoin": "x"}},
    )
    plugins = (("anthropic", sidecar.providers.anthropic),)
    with (
        pytest.raises(ConfigError, match="anthropic_versoin"),
        running_sidecar(config, tmp_path, plugins),
    ):
        pass
