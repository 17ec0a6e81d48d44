"""The `gemini` provider: Gemini API fixtures in, OpenAI-shaped payloads out (no sockets)."""

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
from sidecar.fallback import retryable
from sidecar.provider import StreamChunk, Target, UpstreamCall, Usage
from sidecar.providers import gemini
from sidecar.providers.gemini import (
    SKIP_SIGNATURE,
    GeminiProvider,
    StreamTranslator,
    to_chat_completion,
    to_gemini_request,
    to_gemini_schema,
)
from sidecar.settings import ProviderSettings, Timeouts

from .support import SPEC, assert_openai, fixture_bytes, fixture_json

KEY_ENV = "SIDECAR_TEST_GEMINI_KEY"
KEY = "AIza-test-0123"
MODEL = "gemini-2.5-flash"
TARGET = Target("gemini", "gem", MODEL, None, False)
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


@cache
def _gemini_schema() -> dict[str, Any]:
    path = SPEC / "gemini" / "gemini-generate-content-response.schema.json"
    return json.loads(path.read_text())


def assert_gemini(payload: Any) -> None:
    """A GenerateContentResponse as google-genai parses it: keeps made-up answers honest."""
    schema = {**_gemini_schema(), "$ref": "#/$defs/GenerateContentResponse"}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=str)
    assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"


def answer(*candidates: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A GenerateContentResponse with these candidates, checked against the schema."""
    response = {
        "candidates": list(candidates),
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12},
        "modelVersion": MODEL,
        "responseId": "resp-1",
        **fields,
    }
    assert_gemini(response)
    return response


def candidate(
    *parts: dict[str, Any], finish: str | None = "STOP", index: int = 0
) -> dict[str, Any]:
    made: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": index}
    if finish:
        made["finishReason"] = finish
    return made


def sse(*responses: dict[str, Any]) -> bytes:
    """Gemini's `alt=sse` framing: `data:` lines ended by CRLF pairs, no [DONE]."""
    for response in responses:
        assert_gemini(response)
    return b"".join(b"data: " + json.dumps(r).encode() + b"\r\n\r\n" for r in responses)


def translated(body: dict[str, Any]) -> dict[str, Any]:
    return to_gemini_request({"model": MODEL, **body})


# --- request translation ---------------------------------------------------------------


def test_the_request_fixture_is_what_an_openai_request_becomes() -> None:
    expected = fixture_json("gemini/generateContent_request.json")
    # A thinking budget has no OpenAI field; the model's own default applies.
    del expected["generationConfig"]["thinkingConfig"]
    body = {
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Explain how AI works in a few words"},
        ],
        "temperature": 0.2,
        "max_tokens": 256,
        "tools": [WEATHER_TOOL],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert translated(body) == expected


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    request = translated(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            ]
        }
    )
    assert request["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nAnswer in French."}]}
    assert request["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_roles_are_mapped_and_consecutive_turns_merged() -> None:
    request = translated(
        {
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
                {"role": "user", "content": ""},
                {"role": "user", "content": "five"},
            ]
        }
    )
    assert "systemInstruction" not in request
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
        {"role": "user", "parts": [{"text": "five"}]},
    ]


def test_tool_calls_and_results_round_trip() -> None:
    request = translated(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
                {
                    "role": "tool",
                    "tool_call_id": "call_1",
                    "content": [{"type": "text", "text": '{"temperature": 22}'}],
                },
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [WEATHER_TOOL],
        }
    )
    assert request["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert request["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temperature": 22}}},
            {"text": "Thanks"},
        ],
    }


def test_thought_signatures_the_client_kept_go_back() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}},
    }
    second = {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    request = translated(
        {"messages": [*HELLO, {"role": "assistant", "tool_calls": [call, second]}]}
    )
    assert request["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": "c2lnbmF0dXJl"},
        {"functionCall": {"name": "f", "args": {}}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        (None, None),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: object, expected: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"messages": HELLO, "tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    config = translated(body).get("toolConfig")
    assert config == (None if expected is None else {"functionCallingConfig": expected})


@pytest.mark.parametrize(("mode", "expected"), [("required", "ANY"), ("auto", None)])
def test_allowed_tools_send_only_those_declarations(mode: str, expected: str | None) -> None:
    other = {"type": "function", "function": {"name": "now"}}
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": mode,
            "tools": [{"type": "function", "function": {"name": "now"}}],
        },
    }
    request = translated({"messages": HELLO, "tools": [WEATHER_TOOL, other], "tool_choice": choice})
    assert request["tools"] == [{"functionDeclarations": [{"name": "now"}]}]
    config = request.get("toolConfig", {}).get("functionCallingConfig", {})
    assert config.get("mode") == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    request = translated({"messages": HELLO, "tool_choice": "required"})
    assert "toolConfig" not in request
    assert "tools" not in request


def test_images_and_audio() -> None:
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
                            "image_url": {
                                "url": "https://example.com/a/cat.JPG?w=1",
                                "detail": "low",
                            },
                        },
                        {"type": "image_url", "image_url": {"url": "http://example.com/b.webp"}},
                        {"type": "input_audio", "input_audio": {"data": "UklGRg", "format": "wav"}},
                    ],
                }
            ]
        }
    )
    assert request["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a/cat.JPG?w=1"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "http://example.com/b.webp"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg"}},
    ]


def test_generation_config() -> None:
    request = translated(
        {
            "messages": HELLO,
            "max_tokens": 50,
            "max_completion_tokens": 60,
            "temperature": 1.5,
            "top_p": 0.9,
            "stop": "END",
            "n": 3,
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0,
            "user": "u-1",
            "logprobs": True,
            "parallel_tool_calls": False,
            "reasoning_effort": "low",
        }
    )
    assert request["generationConfig"] == {
        "maxOutputTokens": 60,
        "temperature": 1.5,
        "topP": 0.9,
        "stopSequences": ["END"],
        "candidateCount": 3,
        "seed": 7,
        "presencePenalty": 0.5,
    }
    stops = translated({"messages": HELLO, "stop": ["a", "", "b"], "n": 1, "max_tokens": 9})
    assert stops["generationConfig"] == {"maxOutputTokens": 9, "stopSequences": ["a", "b"]}
    assert "generationConfig" not in translated({"messages": HELLO, "frequency_penalty": 0})


def test_response_formats() -> None:
    def config(response_format: dict[str, Any]) -> dict[str, Any] | None:
        request = translated({"messages": HELLO, "response_format": response_format})
        return request.get("generationConfig")

    assert config({"type": "text"}) is None
    assert config({"type": "json_object"}) == {"responseMimeType": "application/json"}
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    json_schema = {
        "type": "json_schema",
        "json_schema": {"name": "p", "schema": schema, "strict": True},
    }
    assert config(json_schema) == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}},
            "required": ["name", "age"],
            "propertyOrdering": ["name", "age"],
        },
    }


def test_a_pydantic_schema_is_cut_to_what_gemini_accepts() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {
            "Unit": {"type": "string", "enum": ["c", "f"], "title": "Unit"},
            "Place": {
                "type": "object",
                "properties": {"city": {"type": "string", "format": "uri"}},
                "required": ["city", "ghost"],
                "additionalProperties": False,
            },
        },
        "type": "object",
        "title": "Query",
        "properties": {
            "place": {"$ref": "#/$defs/Place", "description": "Where"},
            "unit": {"anyOf": [{"$ref": "#/$defs/Unit"}, {"type": "null"}], "default": None},
            "when": {"type": ["string", "null"], "format": "date-time"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "format": "int32"},
            "mode": {"const": "fast"},
            "level": {"enum": [1, 2, 3], "type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "either": {"oneOf": [{"type": "string"}, {"type": "number", "format": "uuid"}]},
            "both": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
                ]
            },
            "free": {"type": "object", "additionalProperties": True},
            "anything": True,
        },
        "required": ["place"],
        "additionalProperties": False,
        "strict": True,
    }
    cut = to_gemini_schema(schema, "p", ordered=True)
    assert cut["propertyOrdering"] == list(schema["properties"])
    assert cut["properties"]["both"]["propertyOrdering"] == ["a", "b"]
    assert to_gemini_schema(schema, "p") == {
        "type": "OBJECT",
        "title": "Query",
        "properties": {
            "place": {
                "type": "OBJECT",
                "description": "Where",
                "properties": {"city": {"type": "STRING"}},
                "required": ["city"],
            },
            "unit": {
                "type": "STRING",
                "enum": ["c", "f"],
                "title": "Unit",
                "default": None,
                "nullable": True,
            },
            "when": {"type": "STRING", "format": "date-time", "nullable": True},
            "days": {"type": "INTEGER", "minimum": 1, "maximum": 7, "format": "int32"},
            "mode": {"type": "STRING", "enum": ["fast"]},
            "level": {"type": "INTEGER"},
            "tags": {"type": "ARRAY", "maxItems": 3, "items": {"type": "STRING"}},
            "either": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
            "both": {
                "type": "OBJECT",
                "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
                "required": ["a", "b"],
            },
            "free": {"type": "OBJECT"},
            "anything": {},
        },
        "required": ["place"],
    }


def test_parameterless_tools_send_no_parameters() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
        {"type": "function", "function": {"name": "today", "description": "The date"}},
    ]
    request = translated({"messages": HELLO, "tools": tools})
    assert request["tools"] == [
        {"functionDeclarations": [{"name": "now"}, {"name": "today", "description": "The date"}]}
    ]


def tool_with(parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


RECURSIVE = {
    "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    "$ref": "#/$defs/Node",
}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
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
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://e.com/img?id=1"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].input_audio",
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
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]},
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "call_unknown", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": HELLO, "tools": [{"type": "custom", "custom": {}}]}, "tools[0].type"),
        ({"messages": HELLO, "tools": ["f"]}, "tools[0]"),
        ({"messages": HELLO, "tools": [tool_with(RECURSIVE)]}, "tools[0].function.parameters"),
        (
            {"messages": HELLO, "tools": [tool_with({"$ref": "https://e.com/s.json"})]},
            "tools[0].function.parameters",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
    ],
)
def test_what_cannot_be_translated_is_a_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_gemini_request({"model": MODEL, **body})
    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert_openai("ErrorResponse", caught.value.body())


# --- response translation --------------------------------------------------------------


def test_response_fixture_becomes_a_chat_completion() -> None:
    response = fixture_json("gemini/generateContent_response.json")
    assert_gemini(response)
    payload, usage = to_chat_completion(response, created=1)
    assert_openai("CreateChatCompletionResponse", payload)
    assert (payload["id"], payload["model"]) == ("tTCwacuEBMvnitYP06qsgQY", "gemini-2.5-flash")
    (choice,) = payload["choices"]
    assert choice == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "AI learns patterns from data to make predictions or decisions.",
            "refusal": None,
        },
        "finish_reason": "stop",
        "logprobs": None,
    }
    assert payload["usage"]["total_tokens"] == 19
    assert usage == Usage(8, 11, 0)


def test_function_call_fixture_becomes_tool_calls() -> None:
    response = fixture_json("gemini/generateContent_function_call.json")
    assert_gemini(response)
    payload, usage = to_chat_completion(response)
    assert_openai("CreateChatCompletionResponse", payload)
    (choice,) = payload["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert len(call["id"]) > 10
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert "extra_content" not in call
    assert usage == Usage(52, 5, 0)


def test_tool_calls_get_distinct_ids_and_keep_their_thought_signature() -> None:
    response = answer(
        candidate(
            {"text": "Let me look."},
            {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "b"}},
        )
    )
    payload, _ = to_chat_completion(response)
    assert_openai("CreateChatCompletionResponse", payload)
    message = payload["choices"][0]["message"]
    assert message["content"] == "Let me look."
    first, second = message["tool_calls"]
    assert first["id"] != second["id"]
    assert first["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert second["function"] == {"name": "b", "arguments": "{}"}

    # The client sends the message back as it got it: the signature returns to Gemini.
    request = translated(
        {
            "messages": [
                *HELLO,
                message,
                {"role": "tool", "tool_call_id": second["id"], "content": "ok"},
            ]
        }
    )
    assert request["contents"][1]["parts"][1]["thoughtSignature"] == "c2ln"
    assert request["contents"][2]["parts"] == [
        {"functionResponse": {"name": "b", "response": {"output": "ok"}}}
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(reason: str | None, finish: str) -> None:
    payload, _ = to_chat_completion(answer(candidate({"text": "Hi"}, finish=reason)))
    assert_openai("CreateChatCompletionResponse", payload)
    assert payload["choices"][0]["finish_reason"] == finish


def test_a_safety_stop_without_content_has_empty_content() -> None:
    stopped = {"finishReason": "SAFETY", "index": 0}
    payload, _ = to_chat_completion(answer(stopped))
    assert_openai("CreateChatCompletionResponse", payload)
    assert payload["choices"][0]["message"]["content"] == ""
    assert payload["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize("n", [1, 2])
def test_a_blocked_prompt_is_a_content_filter_answer(n: int) -> None:
    response = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": MODEL,
        "responseId": "blocked-1",
    }
    assert_gemini(response)
    payload, usage = to_chat_completion(response, MODEL, n)
    assert_openai("CreateChatCompletionResponse", payload)
    assert [c["index"] for c in payload["choices"]] == list(range(n))
    for choice in payload["choices"]:
        assert choice["message"] == {"role": "assistant", "content": "", "refusal": None}
        assert choice["finish_reason"] == "content_filter"
    assert usage == Usage(9, 0, 0)


def test_several_candidates_become_several_choices() -> None:
    response = answer(
        candidate({"text": "Second"}, index=1, finish="MAX_TOKENS"),
        candidate({"text": "First"}, index=0),
    )
    payload, _ = to_chat_completion(response)
    assert_openai("CreateChatCompletionResponse", payload)
    assert [
        (c["index"], c["message"]["content"], c["finish_reason"]) for c in payload["choices"]
    ] == [
        (0, "First", "stop"),
        (1, "Second", "length"),
    ]


def test_usage_counts_thoughts_cache_and_tool_prompts() -> None:
    usage_metadata = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 800,
        "toolUsePromptTokenCount": 20,
        "candidatesTokenCount": 30,
        "thoughtsTokenCount": 70,
        "totalTokenCount": 1120,
    }
    response = answer(
        candidate({"text": "pondering...", "thought": True}, {"text": "42"}),
        usageMetadata=usage_metadata,
    )
    payload, usage = to_chat_completion(response)
    assert_openai("CreateChatCompletionResponse", payload)
    assert payload["choices"][0]["message"]["content"] == "42"  # the thought summary is not
    assert payload["usage"] == {
        "prompt_tokens": 1020,
        "completion_tokens": 100,
        "total_tokens": 1120,
        "prompt_tokens_details": {"cached_tokens": 800},
        "completion_tokens_details": {"reasoning_tokens": 70},
    }
    assert usage == Usage(1020, 100, 800)


# --- the provider over a mock transport ------------------------------------------------


Handler = Callable[[httpx.Request], Any]


def run_provider(
    handler: Handler,
    action: Callable[[GeminiProvider], Any],
    monkeypatch: pytest.MonkeyPatch,
    timeouts: Timeouts | None = None,
    base_url: str | None = "https://gemini.test/v1beta/",
) -> Any:
    monkeypatch.setenv(KEY_ENV, KEY)
    settings = ProviderSettings(
        name="gem",
        kind="gemini",
        base_url=base_url,
        api_key_env=KEY_ENV,
        timeouts=timeouts or Timeouts(),
    )

    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await action(GeminiProvider(settings, client))

    return asyncio.run(main())


def call(stream: bool = False, **body: Any) -> UpstreamCall:
    payload: dict[str, Any] = {"model": MODEL, "messages": HELLO, **body}
    if stream:
        payload["stream"] = True
        payload.setdefault("stream_options", {"include_usage": True})
    return UpstreamCall(payload, TARGET, "req_1", {"traceparent": "00-abc-def-01"})


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
) -> Callable[[GeminiProvider], Any]:
    async def action(provider: GeminiProvider) -> None:
        async for chunk in provider.stream(provider_call):
            chunks.append(chunk)

    return action


def stream_of(raw: bytes, monkeypatch: pytest.MonkeyPatch, **body: Any) -> list[StreamChunk]:
    chunks: list[StreamChunk] = []
    run_provider(sse_handler(raw), collect(call(stream=True, **body), chunks), monkeypatch)
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk.payload)
    return chunks


def choices_of(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    return [choice for chunk in chunks for choice in chunk.payload["choices"]]


def test_complete_sends_key_url_and_trace_and_translates(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=fixture_bytes("gemini/generateContent_response.json"))

    completion = run_provider(handler, lambda p: p.complete(call(max_tokens=10)), monkeypatch)
    assert_openai("CreateChatCompletionResponse", completion.payload)
    assert completion.raw is None
    assert completion.usage == Usage(8, 11, 0)
    (request,) = seen
    assert str(request.url) == f"https://gemini.test/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["traceparent"] == "00-abc-def-01"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"maxOutputTokens": 10},
    }


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("models/gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("tunedModels/my-tune", "/v1beta/tunedModels/my-tune:generateContent"),
    ],
)
def test_the_model_is_in_the_url_and_the_default_base_url(
    monkeypatch: pytest.MonkeyPatch, model: str, path: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=fixture_bytes("gemini/generateContent_response.json"))

    run_provider(handler, lambda p: p.complete(call(model=model)), monkeypatch, base_url=None)
    assert seen[0].url.host == "generativelanguage.googleapis.com"
    assert seen[0].url.path == path


ERRORS = [
    ("gemini/error_400.json", 400, "INVALID_ARGUMENT", "API key not valid", False),
    ("gemini/error_429.json", 429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", True),
    (None, 500, "INTERNAL", "An internal error has occurred", True),
    (None, 503, "UNAVAILABLE", "The model is overloaded", True),
]


def error_body(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "status": code}}).encode()


@pytest.mark.parametrize(("fixture", "status", "error_type", "message", "retry"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_error_statuses_keep_status_type_and_message(
    monkeypatch: pytest.MonkeyPatch,
    fixture: str | None,
    status: int,
    error_type: str,
    message: str,
    retry: bool,
    stream: bool,
) -> None:
    body = fixture_bytes(fixture) if fixture else error_body(status, error_type, message + ".")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    chunks: list[StreamChunk] = []
    action = collect(call(stream=True), chunks) if stream else (lambda p: p.complete(call()))
    with pytest.raises(UpstreamStatusError) as caught:
        run_provider(handler, action, monkeypatch)
    error = caught.value
    assert chunks == []  # a refused stream raises before its first chunk
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.message.startswith(message)
    assert retryable(error) is retry
    assert_openai("ErrorResponse", error.body())
    assert error.headers["x-sidecar-upstream"] == "gem"


def test_stream_fixture_becomes_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    chunks: list[StreamChunk] = []
    raw = fixture_bytes("gemini/streamGenerateContent_alt_sse.sse")
    assert b"\r\n" in raw
    run_provider(sse_handler(raw, seen), collect(call(stream=True), chunks), monkeypatch)
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk.payload)
        assert chunk.raw is None
        assert chunk.payload["id"] == "tTCwacuEBMvnitYP06qsgQY"
        assert chunk.payload["model"] == "gemini-2.5-flash"
    deltas = [c.payload["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "AI learns"},
        {"content": " patterns from data"},
        {"content": " to make predictions."},
        {},
    ]
    assert chunks[-2].payload["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1].payload["choices"] == []
    assert chunks[-1].payload["usage"]["total_tokens"] == 17
    assert [c.usage for c in chunks if c.usage] == [Usage(8, 9, 0)]
    (request,) = seen
    assert str(request.url) == (
        f"https://gemini.test/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    )
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["traceparent"] == "00-abc-def-01"
    assert json.loads(request.content) == {
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]
    }


def test_the_array_fixture_translates_like_the_sse_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `alt=sse` Gemini streams one JSON array of the same responses."""
    translator = StreamTranslator(include_usage=True, model=MODEL)
    chunks = []
    for response in fixture_json("gemini/streamGenerateContent_array.json"):
        assert_gemini(response)
        chunks += translator.feed(response)
    assert translator.finished
    chunks += translator.final()
    from_sse = stream_of(fixture_bytes("gemini/streamGenerateContent_alt_sse.sse"), monkeypatch)

    def comparable(chunk: StreamChunk) -> tuple[Any, Usage | None]:
        assert_openai("CreateChatCompletionStreamResponse", chunk.payload)
        return {**chunk.payload, "created": 0}, chunk.usage

    assert [comparable(c) for c in chunks] == [comparable(c) for c in from_sse]


def test_stream_without_include_usage_has_no_usage_chunk_but_keeps_usage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = fixture_bytes("gemini/streamGenerateContent_alt_sse.sse")
    chunks = stream_of(raw, monkeypatch, stream_options=None)
    assert all(c.payload["choices"] for c in chunks)
    assert chunks[-1].payload["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1].usage == Usage(8, 9, 0)


def test_streamed_function_calls_become_tool_call_deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = sse(
        answer(candidate({"text": "Checking both."}, finish=None)),
        answer(
            candidate(
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "c2ln",
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ),
            usageMetadata={
                "promptTokenCount": 20,
                "candidatesTokenCount": 12,
                "thoughtsTokenCount": 5,
            },
        ),
    )
    chunks = stream_of(raw, monkeypatch)
    calls = [tc for choice in choices_of(chunks) for tc in choice["delta"].get("tool_calls", [])]
    assert [tc["index"] for tc in calls] == [0, 1]
    assert all(tc["id"].startswith("call_") and tc["type"] == "function" for tc in calls)
    assert [json.loads(tc["function"]["arguments"]) for tc in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    finishes = [c["finish_reason"] for c in choices_of(chunks) if c["finish_reason"]]
    assert finishes == ["tool_calls"]
    assert chunks[-1].usage == Usage(20, 17, 0)


def test_streamed_candidates_become_separate_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = sse(
        answer(
            candidate({"text": "A"}, index=0, finish=None),
            candidate({"text": "B"}, index=1, finish=None),
        ),
        answer(candidate({"text": "a"}, index=0)),
        answer(candidate({"text": "b"}, index=1, finish="MAX_TOKENS")),
    )
    chunks = stream_of(raw, monkeypatch, n=2)
    for index, text, finish in ((0, "Aa", "stop"), (1, "Bb", "length")):
        mine = [c for c in choices_of(chunks) if c["index"] == index]
        assert mine[0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["delta"].get("content") or "" for c in mine) == text
        assert [c["finish_reason"] for c in mine if c["finish_reason"]] == [finish]
    assert chunks[-1].payload["choices"] == []


def test_a_streamed_blocked_prompt_is_a_content_filter_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": MODEL,
        "responseId": "blocked-1",
    }
    chunks = stream_of(sse(blocked), monkeypatch)
    assert [(c["delta"], c["finish_reason"]) for c in choices_of(chunks)] == [
        ({"role": "assistant", "content": ""}, None),
        ({}, "content_filter"),
    ]
    assert chunks[-1].usage == Usage(9, 0, 0)


def test_an_error_inside_the_stream_raises_with_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    overloaded = error_body(503, "UNAVAILABLE", "The model is overloaded.")
    raw = (
        sse(answer(candidate({"text": "Hel"}, finish=None))) + b"data: " + overloaded + b"\r\n\r\n"
    )
    chunks: list[StreamChunk] = []
    with pytest.raises(UpstreamStatusError) as caught:
        run_provider(sse_handler(raw), collect(call(stream=True), chunks), monkeypatch)
    assert [c.payload["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hel"]
    assert (caught.value.status_code, caught.value.error_type) == (503, "UNAVAILABLE")
    assert caught.value.message == "The model is overloaded."
    assert retryable(caught.value)
    assert_openai("ErrorResponse", caught.value.body())


def test_an_error_before_any_content_comes_before_the_first_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    usage_only = {"usageMetadata": {"promptTokenCount": 8}, "modelVersion": MODEL}
    quota = json.loads(fixture_bytes("gemini/error_429.json"))
    quota["error"].pop("code")  # the status name alone still tells
    raw = sse(usage_only) + b"data: " + json.dumps(quota).encode() + b"\r\n\r\n"
    chunks: list[StreamChunk] = []
    with pytest.raises(UpstreamStatusError) as caught:
        run_provider(sse_handler(raw), collect(call(stream=True), chunks), monkeypatch)
    assert chunks == []
    assert caught.value.status_code == 429


def test_stream_ending_without_a_finish_reason_is_truncated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = fixture_bytes("gemini/streamGenerateContent_alt_sse.sse")
    cut = raw[: raw.rindex(b"data: ")]
    chunks: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        run_provider(sse_handler(cut), collect(call(stream=True), chunks), monkeypatch)
    assert caught.value.code == "upstream_stream_truncated"
    assert [c.payload["choices"][0]["delta"].get("content") for c in chunks] == [
        "",
        "AI learns",
        " patterns from data",
    ]


def test_one_unfinished_candidate_is_still_a_truncated_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = sse(
        answer(candidate({"text": "A"}, index=0), candidate({"text": "B"}, index=1, finish=None))
    )
    with pytest.raises(UpstreamUnavailable, match="ended the stream"):
        run_provider(sse_handler(raw), collect(call(stream=True, n=2), []), monkeypatch)


@pytest.mark.parametrize(
    "body",
    [b'{"candidates": [', b'{"candidates": [], "modelVersion": "gemini-2.5-flash"}'],
)
def test_malformed_or_empty_answers_are_a_502(monkeypatch: pytest.MonkeyPatch, body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    with pytest.raises(UpstreamUnavailable) as caught:
        run_provider(handler, lambda p: p.complete(call()), monkeypatch)
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_malformed_response")


def test_a_stalled_stream_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield fixture_bytes("gemini/streamGenerateContent_alt_sse.sse")[:200]
        await asyncio.sleep(5)
        yield b""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stalled())

    timeouts = Timeouts(connect=1, first_byte=1, idle=0.2, total=3)
    with pytest.raises(UpstreamUnavailable) as caught:
        run_provider(handler, collect(call(stream=True), []), monkeypatch, timeouts)
    assert (caught.value.status_code, caught.value.code) == (504, "upstream_timeout")


def test_the_key_never_shows_in_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("not called")

    async def action(provider: GeminiProvider) -> str:
        return repr(provider) + repr(provider.endpoint(MODEL, stream=True))

    shown = run_provider(handler, action, monkeypatch)
    assert KEY not in shown
    assert "gemini.test" in shown


# --- registration ----------------------------------------------------------------------


def test_registration() -> None:
    kind = gemini.register_providers()
    assert kind.name == "gemini"
    assert kind.factory is GeminiProvider
    assert kind.options == frozenset()
    assert not kind.requires_base_url
