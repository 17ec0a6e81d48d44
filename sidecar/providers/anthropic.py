"""Provider kind `anthropic`: Anthropic's Messages API behind the OpenAI chat completions seam.

The core hands over an OpenAI chat completions body; it goes out as `POST {base_url}/messages`
with `x-api-key` and `anthropic-version` headers, and the answer comes back as a
`chat.completion` (or `chat.completion.chunk`s), so clients never see Anthropic's format.

Translated, request (OpenAI -> Messages):
  - `system` and `developer` messages, wherever they are, joined ("\\n\\n") into `system`;
  - user content as a string or parts: `text`, `image_url` (data URLs -> base64 image
    blocks, http(s) URLs -> `url` image sources);
  - assistant text and `tool_calls` (-> `tool_use` blocks, `arguments` parsed as JSON);
  - `tool` messages -> `tool_result` blocks in a user turn;
  - consecutive messages of the same role merged into one turn (Anthropic needs turns
    to alternate);
  - `tools` (function tools -> `name`, `description`, `input_schema`), `tool_choice`
    (auto, none, required -> any, a named function -> tool), `parallel_tool_calls: false`
    -> `disable_parallel_tool_use`;
  - `max_completion_tokens` / `max_tokens` (else the `default_max_tokens` option),
    `stop` -> `stop_sequences`, `temperature` (clamped to Anthropic's 0..1), `top_p`,
    `user` -> `metadata.user_id`, `stream`.
Translated, response (Messages -> OpenAI): text blocks joined into `content`, `tool_use`
  -> `tool_calls`, `stop_reason` -> `finish_reason` (end_turn, stop_sequence, pause_turn
  -> stop; max_tokens, model_context_window_exceeded -> length; tool_use -> tool_calls;
  refusal -> content_filter), usage (cache reads and writes counted in `prompt_tokens`,
  reads in `prompt_tokens_details.cached_tokens`); streams event by event, the usage
  chunk last when `stream_options.include_usage` is set; `event: error` and error
  statuses -> the OpenAI error shape with the upstream's status (an `event: error`
  gets the status its error type stands for: overloaded_error 529, rate_limit_error 429...).

Not translated:
  - refused with 400 before sending: `n` > 1, content parts other than text and
    image_url (input_audio, file), non-function tools, unparseable tool-call arguments,
    the deprecated `function` role;
  - ignored: `response_format`, `seed`, `logprobs`/`top_logprobs`, `presence_penalty`,
    `frequency_penalty`, `logit_bias`, `reasoning_effort`, `modalities`, `audio`,
    `prediction`, `store`, `metadata`, `service_tier`, image `detail`, message `name`,
    the deprecated `functions`/`function_call`, unknown fields;
  - not produced: thinking/redacted_thinking blocks and citations are dropped from
    answers; server tools (web search, code execution) are not offered; prompt caching
    (`cache_control`) is never requested; `logprobs` is always null;
  - not checked: Anthropic-side limits (a first turn that is not a user turn, temperature
    together with top_p on models that refuse it) reach the upstream and come back as
    its 400.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from ..errors import (
    ConfigProblem,
    InvalidRequest,
    UpstreamStatusError,
    upstream_status_error,
)
from ..hookspecs import hookimpl
from ..provider import Completion, ProviderKind, StreamChunk, UpstreamCall, Usage
from ..settings import ProviderSettings
from ..upstream import Endpoint
from ..wire.openai import content_text, dumps, invalid_value, unsupported_part

MODELS = "Anthropic models"
"""How errors name what cannot be sent to this kind."""

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
OPTIONS = frozenset({"anthropic_version", "default_max_tokens"})

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "gateway_timeout_error": 504,
    "overloaded_error": 529,
}


# --- request: OpenAI chat completions -> Messages -------------------------------------


def to_messages_request(
    body: Mapping[str, Any], default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat completions body."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequest(
            "n > 1 is not supported by Anthropic models.", param="n", code="unsupported_value"
        )
    system: list[str] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for index, message in enumerate(body.get("messages") or []):
        where = f"messages[{index}]"
        role = message.get("role")
        if role in ("system", "developer"):
            text = content_text(message.get("content"), where, MODELS)
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), where)
            turn = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
            turn = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            turn = "user"
        else:
            raise InvalidRequest(
                f"Role {role!r} is not supported by Anthropic models.",
                param=f"{where}.role",
                code="unsupported_value",
            )
        if not blocks:
            continue
        if turns and turns[-1][0] == turn:
            turns[-1][1].extend(blocks)
        else:
            turns.append((turn, blocks))

    request: dict[str, Any] = {"model": body.get("model")}
    request["max_tokens"] = _max_tokens(body, default_max_tokens)
    if system:
        request["system"] = "\n\n".join(system)
    request["messages"] = [{"role": role, "content": _compact(blocks)} for role, blocks in turns]
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise invalid_value("tools", "must be an array of tools")
        request["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and choice.get("type") != "none":
            choice["disable_parallel_tool_use"] = True
        if choice != {"type": "auto"}:
            request["tool_choice"] = choice
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    if any(isinstance(s, str) and s for s in stops):
        request["stop_sequences"] = [s for s in stops if isinstance(s, str) and s]
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        request["temperature"] = min(max(float(temperature), 0.0), 1.0)
    top_p = body.get("top_p")
    if isinstance(top_p, int | float) and not isinstance(top_p, bool):
        request["top_p"] = top_p
    user = body.get("user")
    if isinstance(user, str) and user:
        request["metadata"] = {"user_id": user}
    if body.get("stream"):
        request["stream"] = True
    return request


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return default


def _user_blocks(content: object, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid_value(f"{where}.content[{i}].text", "must be a string")
            blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), f"{where}.content[{i}]"))
        else:
            raise unsupported_part(part, f"{where}.content[{i}]", MODELS)
    return blocks


def _image(image_url: object, where: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if isinstance(url, str) and url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if comma and encoding == "base64" and media_type:
            source = {"type": "base64", "media_type": media_type, "data": data}
            return {"type": "image", "source": source}
    elif isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(
        "An image must be a base64 data URL or an http(s) URL.",
        param=f"{where}.image_url",
        code="invalid_value",
    )


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [
            str(part.get("text") or "")
            for part in (content if isinstance(content, list) else [])
            if isinstance(part, dict) and part.get("type") == "text"
        ]
    # Anthropic refuses empty text blocks; an empty assistant text says nothing.
    blocks.extend({"type": "text", "text": text} for text in texts if text)
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise invalid_value(f"{where}.tool_calls", "must be an array")
    for i, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise invalid_value(f"{where}.tool_calls[{i}].function", "must be an object")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments)
        except (TypeError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest(
                "Tool-call arguments must be a JSON object to be sent to an Anthropic model.",
                param=f"{where}.tool_calls[{i}].function.arguments",
                code="invalid_value",
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": parsed,
            }
        )
    return blocks


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    text = content_text(message.get("content"), where, MODELS)
    if text:
        result["content"] = text
    return result


def _compact(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text block is sent as a plain string, as clients of the Messages API write it."""
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        text: str = blocks[0]["text"]
        return text
    return blocks


def _tool(tool: object, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise invalid_value(where, "must be an object")
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise InvalidRequest(
            f"Only function tools can be sent to an Anthropic model, not {tool.get('type')!r}.",
            param=f"{where}.type",
            code="unsupported_value",
        )
    translated: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        translated["description"] = function["description"]
    translated["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return translated


def _tool_choice(choice: object) -> dict[str, Any]:
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and function.get("name"):
            return {"type": "tool", "name": function["name"]}
    return {"type": "auto"}


# --- response: Messages -> OpenAI chat completions ------------------------------------


def to_chat_completion(
    message: Mapping[str, Any], created: int | None = None
) -> tuple[dict[str, Any], Usage]:
    """The `chat.completion` for a Messages API `message`, and its usage."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": str(block.get("id")),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name")),
                        "arguments": dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    openai_usage, usage = _usage(message.get("usage"))
    payload = {
        "id": str(message.get("id") or ""),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": str(message.get("model") or ""),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(message.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage,
    }
    return payload, usage


def finish_reason(stop_reason: object) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(raw: object) -> tuple[dict[str, Any], Usage]:
    usage = raw if isinstance(raw, dict) else {}
    cache_read = _count(usage, "cache_read_input_tokens")
    cache_write = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + cache_read + cache_write
    completion = _count(usage, "output_tokens")
    openai_usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }
    return openai_usage, Usage(prompt, completion, cache_read, cache_write)


def error_status(error_type: object) -> int:
    """The HTTP status Anthropic uses for an error type (for `event: error` mid-stream)."""
    return ERROR_STATUSES.get(error_type, 500) if isinstance(error_type, str) else 500


def error_event(data: bytes, provider: str) -> UpstreamStatusError:
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    status = error_status(error.get("type") if isinstance(error, dict) else None)
    return upstream_status_error(status, data, provider)


class StreamTranslator:
    """Turns Messages stream events into `chat.completion.chunk` payloads, one event at a time.

    The `role` chunk is held back until the first content, so an upstream that fails right
    after `message_start` fails before the first chunk and the request can still fall back.
    """

    def __init__(self, include_usage: bool, created: int | None = None) -> None:
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = ""
        self.finished = False
        self._usage: dict[str, Any] = {}
        self._role_sent = False
        self._tools: dict[int, int] = {}
        """Anthropic content block index -> OpenAI tool_calls index."""

    def feed(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message") or {}
            self.id = str(message.get("id") or "")
            self.model = str(message.get("model") or "")
            self._update_usage(message.get("usage"))
            return []
        if kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "text" and block.get("text"):
                return self._delta({"content": block["text"]})
            if block.get("type") == "tool_use":
                index = self._tools.setdefault(payload.get("index", -1), len(self._tools))
                call = {
                    "index": index,
                    "id": str(block.get("id")),
                    "type": "function",
                    "function": {"name": str(block.get("name")), "arguments": ""},
                }
                return self._delta({"tool_calls": [call]})
            return []
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return self._delta({"content": delta["text"]})
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                known = self._tools.get(payload.get("index", -1))
                if known is not None:
                    call = {"index": known, "function": {"arguments": delta["partial_json"]}}
                    return self._delta({"tool_calls": [call]})
            return []
        if kind == "message_delta":
            self._update_usage(payload.get("usage"))
            reason = finish_reason((payload.get("delta") or {}).get("stop_reason"))
            chunks = self._delta({}, reason)
            if not self.include_usage:  # the core still learns the usage
                chunks[-1].usage = _usage(self._usage)[1]
            return chunks
        if kind == "message_stop":
            self.finished = True
            if not self.include_usage:
                return []
            openai_usage, usage = _usage(self._usage)
            payload_ = {**self._envelope(), "choices": [], "usage": openai_usage}
            return [StreamChunk(payload_, usage)]
        return []  # ping, content_block_stop, unknown events

    def _update_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> StreamChunk:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return StreamChunk({**self._envelope(), "choices": [choice]})

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> list[StreamChunk]:
        chunks = []
        if not self._role_sent:
            self._role_sent = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        chunks.append(self._chunk(delta, finish))
        return chunks


# --- the provider ---------------------------------------------------------------------


class AnthropicProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        options = settings.options
        self._max_tokens = int(options.get("default_max_tokens", DEFAULT_MAX_TOKENS))
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": str(options.get("anthropic_version", DEFAULT_VERSION)),
        }
        api_key = settings.api_key()
        if api_key:
            headers["x-api-key"] = api_key
        url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/messages"
        self._endpoint = Endpoint(client, url, headers, settings)

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"AnthropicProvider(name={self.settings.name!r}, url={self._endpoint.url!r})"

    async def complete(self, call: UpstreamCall) -> Completion:
        body = to_messages_request({**call.body, "stream": False}, self._max_tokens)
        raw = await self._endpoint.post(dumps(body), call.headers)
        message = self._endpoint.json(raw)
        if message.get("type") == "error":
            raise error_event(raw, self.settings.name)
        payload, usage = to_chat_completion(message)
        return Completion(payload, usage)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        body = to_messages_request({**call.body, "stream": True}, self._max_tokens)
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        translator = StreamTranslator(include_usage)
        async with contextlib.aclosing(self._endpoint.events(dumps(body), call.headers)) as events:
            async for event in events:
                payload = self._endpoint.json(event.data)
                if event.event == "error" or payload.get("type") == "error":
                    raise error_event(event.data, self.settings.name)
                for chunk in translator.feed(payload):
                    yield chunk
                if translator.finished:
                    return
        raise self._endpoint.truncated()

    async def aclose(self) -> None:
        return None


def validate(settings: ProviderSettings) -> list[ConfigProblem]:
    problems = []
    path = f"providers.{settings.name}"
    version = settings.options.get("anthropic_version", DEFAULT_VERSION)
    if not isinstance(version, str) or not version:
        problems.append(
            ConfigProblem(f"{path}.anthropic_version", "must be a non-empty string (2023-06-01)")
        )
    max_tokens = settings.options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        problems.append(ConfigProblem(f"{path}.default_max_tokens", "must be a positive integer"))
    return problems


@hookimpl(trylast=True)
def register_providers() -> ProviderKind:
    return ProviderKind("anthropic", AnthropicProvider, options=OPTIONS, validate=validate)
