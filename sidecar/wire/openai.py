"""The OpenAI chat completions wire format, as clients send it.

`parse_chat_request` checks what routing and forwarding rely on and keeps the client's
JSON object to forward, unknown fields included. It never loses a field it does not
know: new OpenAI parameters pass through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]
    """The client's JSON object, forwarded with only `model` (and stream options) changed."""
    model: str
    stream: bool
    include_usage: bool
    """The client asked for the final usage chunk of a stream."""
    messages: list[dict[str, Any]]


def parse_chat_request(raw: bytes) -> ChatRequest:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")

    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong("model", "a string", model)
    if not model:
        raise InvalidRequest("'model' must not be empty.", param="model", code="invalid_value")

    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong("messages", "an array", messages)
    if not messages:
        raise InvalidRequest(
            "'messages' must contain at least one message.", param="messages", code="empty_array"
        )
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]")

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _wrong("stream", "a boolean", stream)

    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _wrong("stream_options", "an object", options)
        include_usage = options.get("include_usage") is True

    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _wrong(name, "an integer", value)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise _wrong(name, "a number", value)
    for name, kind, label in (("tools", list, "an array"), ("user", str, "a string")):
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise _wrong(name, label, value)
    return ChatRequest(body, model, stream, include_usage, messages)


def _check_message(message: object, param: str) -> None:
    if not isinstance(message, dict):
        raise _wrong(param, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{param}.role")
    if not isinstance(role, str):
        raise _wrong(f"{param}.role", "a string", role)
    if role not in ROLES:
        raise InvalidRequest(
            f"Invalid value for '{param}.role': expected one of {', '.join(sorted(ROLES))}.",
            param=f"{param}.role",
            code="invalid_value",
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise _wrong(f"{param}.content", "a string or an array of content parts", content)


_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _wrong(param: str, expected: str, value: object) -> InvalidRequest:
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {got}.",
        param=param,
        code="invalid_type",
    )


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the messages' content (text parts only), joined by newlines."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "\n".join(parts)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
