"""The `anthropic` provider: Messages API fixtures in, OpenAI-shaped payloads out (no sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from sidecar.errors import InvalidRequest, UpstreamStatusError, UpstreamUnavailable
from sidecar.provider import StreamChunk, Target, UpstreamCall, Usage
from sidecar.providers import anthropic
from sidecar.providers.anthropic import (
    AnthropicProvider,
    StreamTranslator,
    to_chat_completion,
    to_messages_request,
)
from sidecar.settings import ProviderSettings, Timeouts

from .support import SPEC, assert_openai, fixture_bytes, fixture_json

KEY_ENV = "SIDECAR_TEST_ANTHROPIC_KEY"
KEY = "sk-ant-test-0123"
TARGET = Target("claude", "anth", "claude-sonnet-4-5", None, False)
HELLO = [{"role": "user", "content": "Say hello"}]


@cache
def _anthropic_schema() -> dict[str, Any]:
    return json.loads((SPEC / "anthropic" / "anthropic-messages.schema.json").read_text())


def assert_anthropic(definition: str, payload: Any) -> None:
    schema = {**_anthropic_schema(), "$ref": f"#/$defs/{definition}"}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=str)
    assert not errors, f"{definition}: {errors[0].message} at {list(errors[0].absolute_path)}"


def translated(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    request = to_messages_request({"model": "claude-sonnet-4-5", **body}, **kwargs)
    assert_anthropic("MessageCreateParams", request)
    return request


# --- request translation ---------------------------------------------------------------


def test_the_request_fixture_is_what_an_openai_request_becomes() -> None:
    expected = fixture_json("anthropic/messages_request.json")
    tool = expected["tools"][0]
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What's the weather in Paris?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool["description"],
                    "parameters": tool["input_schema"],
                },
            }
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert_anthropic("MessageCreateParams", expected)
    assert translated(body) == expected


def test_system_and_developer_messages_are_hoisted_and_joined() -> None:
    request = translated(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hi"},
            ]
        }
    )
    assert request["system"] == "Be brief.\n\nAnswer in French."
    assert request["messages"] == [{"role": "user", "content": "Hi"}]


def test_consecutive_same_role_messages_are_merged() -> None:
    request = translated(
        {
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": ""},
                {"role": "system", "content": "mid-conversation system"},
                {"role": "assistant", "content": "four"},
                {"role": "user", "content": "five"},
            ]
        }
    )
    assert request["system"] == "mid-conversation system"
    assert request["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
        },
        {"role": "user", "content": "five"},
    ]


def test_tool_calls_and_tool_results() -> None:
    request = translated(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 22}'},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": {"type": "object"}},
                },
                {"type": "function", "function": {"name": "now"}},
            ],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        }
    )
    assert request["messages"][1] == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "call_1",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
        ],
    }
    assert request["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temperature": 22}'},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "sunny"},
            {"type": "text", "text": "Thanks"},
        ],
    }
    assert request["tools"] == [
        {"name": "get_weather", "input_schema": {"type": "object"}},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert request["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        (None, None),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: object, expected: dict[str, Any] | None) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body: dict[str, Any] = {"messages": HELLO, "tools": tools}
    if choice is not None:
        body["tool_choice"] = choice
    assert translated(body).get("tool_choice") == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in translated({"messages": HELLO, "tool_choice": "required"})


def test_images() -> None:
    request = translated(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in these?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0K"},
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                        },
                    ],
                }
            ]
        }
    )
    assert request["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_sampling_stop_user_and_max_tokens() -> None:
    request = translated(
        {
            "messages": HELLO,
            "stop": "END",
            "temperature": 1.7,
            "top_p": 0.9,
            "user": "user-42",
            "seed": 3,
            "response_format": {"type": "text"},
        }
    )
    assert request["stop_sequences"] == ["END"]
    assert request["temperature"] == 1.0  # clamped into Anthropic's range
    assert request["top_p"] == 0.9
    assert request["metadata"] == {"user_id": "user-42"}
    assert request["max_tokens"] == 4096
    assert "seed" not in request
    assert "response_format" not in request
    assert "stream" not in request
    assert translated({"messages": HELLO, "stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]
    assert translated({"messages": HELLO}, default_max_tokens=77)["max_tokens"] == 77
    assert translated({"messages": HELLO, "max_tokens": 50})["max_tokens"] == 50
    both = {"messages": HELLO, "max_tokens": 50, "max_completion_tokens": 60}
    assert translated(both)["max_tokens"] == 60


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO, "n": 2}, "n"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            },
            "messages[0].content[0].image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1"}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": HELLO, "tools": [{"type": "custom", "custom": {}}]}, "tools[0].type"),
        ({"messages": HELLO, "tools": ["f"]}, "tools[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]},
            "messages[0].tool_calls[0].function",
        ),
    ],
)
def test_what_cannot_be_translated_is_a_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_messages_request({"model": "m", **body})
    assert caught.value.status_code == 400
    assert caught.value.param == param


# --- response translation --------------------------------------------------------------


def test_message_fixture_becomes_a_chat_completion() -> None:
    payload, usage = to_chat_completion(fixture_json("anthropic/message.json"))
    assert_openai("CreateChatCompletionResponse", payload)
    assert payload["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "claude-sonnet-4-5-20250929"
    (choice,) = payload["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello! How can I help you today?",
        "refusal": None,
    }
    assert (choice["finish_reason"], choice["logprobs"]) == ("stop", None)
    assert payload["usage"]["total_tokens"] == 24
    assert usage == Usage(12, 12, 0)


def test_tool_use_fixture_becomes_tool_calls() -> None:
    payload, _ = to_chat_completion(fixture_json("anthropic/message_tool_use.json"))
    assert_openai("CreateChatCompletionResponse", payload)
    (choice,) = payload["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the current weather in Paris for you."
    (call,) = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01NRLabsLyVHZPKxbKvkfSMn"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}


def test_only_tool_use_has_null_content_and_cache_tokens_count_as_prompt() -> None:
    message = {
        **fixture_json("anthropic/message_tool_use.json"),
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 5,
            "output_tokens": 7,
        },
    }
    message["content"] = message["content"][1:]
    payload, usage = to_chat_completion(message)
    assert_openai("CreateChatCompletionResponse", payload)
    assert payload["choices"][0]["message"]["content"] is None
    assert payload["usage"]["prompt_tokens"] == 115
    assert payload["usage"]["prompt_tokens_details"]["cached_tokens"] == 100
    assert usage == Usage(115, 7, 100, 5)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish: str) -> None:
    message = {**fixture_json("anthropic/message.json"), "stop_reason": stop_reason}
    payload, _ = to_chat_completion(message)
    assert_openai("CreateChatCompletionResponse", payload)
    assert payload["choices"][0]["finish_reason"] == finish


# --- the provider over a mock transport ------------------------------------------------


Handler = Callable[[httpx.Request], Any]


def run_provider(
    handler: Handler,
    action: Callable[[AnthropicProvider], Any],
    monkeypatch: pytest.MonkeyPatch,
    timeouts: Timeouts | None = None,
    **options: Any,
) -> Any:
    monkeypatch.setenv(KEY_ENV, KEY)
    settings = ProviderSettings(
        name="anth",
        kind="anthropic",
        base_url="https://anthropic.test/v1/",
        api_key_env=KEY_ENV,
        timeouts=timeouts or Timeouts(),
        options=options,
    )

    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await action(AnthropicProvider(settings, client))

    return asyncio.run(main())


def call(stream: bool = False, **body: Any) -> UpstreamCall:
    payload: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": HELLO, **body}
    if stream:
        payload["stream"] = True
        payload.setdefault("stream_options", {"include_usage": True})
    return UpstreamCall(payload, TARGET, "req_1")


async def _split(raw: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def sse_handler(raw: bytes, seen: list[httpx.Request] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=_split(raw)
        )

    return handler


def collect(
    provider_call: UpstreamCall, chunks: list[StreamChunk]
) -> Callable[[AnthropicProvider], Any]:
    async def action(provider: AnthropicProvider) -> None:
        async for chunk in provider.stream(provider_call):
            chunks.append(chunk)

    return action


def test_complete_sends_the_headers_and_translates(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=fixture_bytes("anthropic/message.json"))

    completion = run_provider(
        handler, lambda p: p.complete(call(max_tokens=10)), monkeypatch, anthropic_version="v-x"
    )
    assert_openai("CreateChatCompletionResponse", completion.payload)
    assert completion.raw is None
    assert completion.usage == Usage(12, 12, 0)
    (request,) = seen
    assert str(request.url) == "https://anthropic.test/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "v-x"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert_anthropic("MessageCreateParams", body)
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Say hello"}],
    }


def test_default_version_and_max_tokens_option(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=fixture_bytes("anthropic/message.json"))

    run_provider(handler, lambda p: p.complete(call()), monkeypatch, default_max_tokens=99)
    assert seen[0].headers["anthropic-version"] == "2023-06-01"
    assert json.loads(seen[0].content)["max_tokens"] == 99


ERRORS = [
    ("anthropic/error_400.json", 400, "invalid_request_error", "max_tokens: Field required"),
    ("anthropic/error_401.json", 401, "authentication_error", "invalid x-api-key"),
    ("anthropic/error_429.json", 429, "rate_limit_error", "This request would exceed"),
    ("anthropic/error_529.json", 529, "overloaded_error", "Overloaded"),
]


@pytest.mark.parametrize(("fixture", "status", "error_type", "message"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_error_statuses_keep_status_type_and_message(
    monkeypatch: pytest.MonkeyPatch,
    fixture: str,
    status: int,
    error_type: str,
    message: str,
    stream: bool,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"retry-after": "7"} if status == 429 else {}
        return httpx.Response(status, headers=headers, content=fixture_bytes(fixture))

    chunks: list[StreamChunk] = []
    action = collect(call(stream=True), chunks) if stream else (lambda p: p.complete(call()))
    with pytest.raises(UpstreamStatusError) as caught:
        run_provider(handler, action, monkeypatch)
    error = caught.value
    assert chunks == []  # a refused stream raises before its first chunk
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.message.startswith(message)
    assert_openai("ErrorResponse", error.body())
    assert error.headers["x-sidecar-upstream"] == "anth"
    assert error.headers.get("retry-after") == ("7" if status == 429 else None)


def test_stream_fixture_becomes_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    chunks: list[StreamChunk] = []
    raw = fixture_bytes("anthropic/message_stream.sse")
    run_provider(sse_handler(raw, seen), collect(call(stream=True), chunks), monkeypatch)
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk.payload)
        assert chunk.raw is None
        assert chunk.payload["id"] == "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"
    deltas = [c.payload["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " there!"},
        {},
    ]
    assert chunks[-2].payload["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1].payload["choices"] == []
    assert chunks[-1].payload["usage"]["total_tokens"] == 17
    assert [c.usage for c in chunks if c.usage] == [Usage(11, 6, 0)]
    body = json.loads(seen[0].content)
    assert_anthropic("MessageCreateParams", body)
    assert body["stream"] is True
    assert "stream_options" not in body
    assert seen[0].headers["x-api-key"] == KEY


def test_stream_without_include_usage_has_no_usage_chunk_but_keeps_usage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks: list[StreamChunk] = []
    raw = fixture_bytes("anthropic/message_stream.sse")
    run_provider(
        sse_handler(raw), collect(call(stream=True, stream_options=None), chunks), monkeypatch
    )
    assert all(c.payload["choices"] for c in chunks)
    assert chunks[-1].payload["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1].usage == Usage(11, 6, 0)


def test_streamed_tool_use_becomes_tool_call_deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[StreamChunk] = []
    raw = fixture_bytes("anthropic/message_stream_tool_use.sse")
    run_provider(sse_handler(raw), collect(call(stream=True), chunks), monkeypatch)
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk.payload)
    calls = [
        tc
        for c in chunks
        for ch in c.payload["choices"]
        for tc in ch["delta"].get("tool_calls", [])
    ]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(tc["index"] == 0 for tc in calls)
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert json.loads(arguments) == {"location": "Paris"}
    finishes = [ch["finish_reason"] for c in chunks for ch in c.payload["choices"]]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage == Usage(377, 65, 0)


def test_error_event_raises_with_the_status_its_type_stands_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks: list[StreamChunk] = []
    raw = fixture_bytes("anthropic/message_stream_error.sse")
    with pytest.raises(UpstreamStatusError) as caught:
        run_provider(sse_handler(raw), collect(call(stream=True), chunks), monkeypatch)
    assert [c.payload["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hel"]
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk.payload)
    assert caught.value.status_code == 529
    assert caught.value.error_type == "overloaded_error"
    assert caught.value.message == "Overloaded"
    assert_openai("ErrorResponse", caught.value.body())


def test_error_right_after_message_start_comes_before_the_first_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = fixture_bytes("anthropic/message_stream_error.sse").split(b"\n\n")
    raw = b"\n\n".join([events[0], events[-2]]) + b"\n\n"
    chunks: list[StreamChunk] = []
    with pytest.raises(UpstreamStatusError) as caught:
        run_provider(sse_handler(raw), collect(call(stream=True), chunks), monkeypatch)
    assert chunks == []
    assert caught.value.status_code == 529


def test_stream_ending_before_message_stop_is_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = fixture_bytes("anthropic/message_stream.sse")
    cut = raw[: raw.index(b"event: message_delta")]
    chunks: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        run_provider(sse_handler(cut), collect(call(stream=True), chunks), monkeypatch)
    assert caught.value.code == "upstream_stream_truncated"
    assert [c.payload["choices"][0]["delta"].get("content") for c in chunks] == [
        "",
        "Hello",
        " there!",
    ]


def test_malformed_answer_is_a_502(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"id": "msg_1", "content": [')

    with pytest.raises(UpstreamUnavailable) as caught:
        run_provider(handler, lambda p: p.complete(call()), monkeypatch)
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_malformed_response")


def test_a_stalled_stream_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield fixture_bytes("anthropic/message_stream.sse")[:300]
        await asyncio.sleep(5)
        yield b""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stalled())

    timeouts = Timeouts(connect=1, first_byte=1, idle=0.2, total=3)
    chunks: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        run_provider(handler, collect(call(stream=True), chunks), monkeypatch, timeouts)
    assert (caught.value.status_code, caught.value.code) == (504, "upstream_timeout")


def test_a_silent_upstream_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=fixture_bytes("anthropic/message.json"))

    timeouts = Timeouts(connect=1, first_byte=0.2, idle=0.2, total=0.3)
    for action in (lambda p: p.complete(call()), collect(call(stream=True), [])):
        with pytest.raises(UpstreamUnavailable) as caught:
            run_provider(handler, action, monkeypatch, timeouts)
        assert (caught.value.status_code, caught.value.code) == (504, "upstream_timeout")


def test_translator_ignores_pings_and_unknown_events() -> None:
    translator = StreamTranslator(include_usage=True, created=1)
    assert translator.feed({"type": "ping"}) == []
    assert translator.feed({"type": "something_new"}) == []
    assert (
        translator.feed(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            }
        )
        == []
    )


# --- registration and options ----------------------------------------------------------


def test_registration_and_option_validation() -> None:
    kind = anthropic.register_providers()
    assert kind.name == "anthropic"
    assert kind.options == frozenset({"anthropic_version", "default_max_tokens"})
    assert kind.validate is not None
    good = ProviderSettings(name="a", kind="anthropic", options={"default_max_tokens": 10})
    assert kind.validate(good) == []
    bad = ProviderSettings(
        name="a", kind="anthropic", options={"default_max_tokens": "10", "anthropic_version": ""}
    )
    assert [p.path for p in kind.validate(bad)] == [
        "providers.a.anthropic_version",
        "providers.a.default_max_tokens",
    ]
