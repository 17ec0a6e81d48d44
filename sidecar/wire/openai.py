"""The OpenAI chat completions wire format, as clients send it.

`parse_chat_request` checks what routing and forwarding rely on and keeps the client's
JSON object to forward, unknown fields included. It never loses a field it does not
know: new OpenAI parameters pass through untouched.

JSON is read and written with orjson, falling back to the standard library for whatever
orjson refuses, so that what is accepted, and the errors, are the standard library's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

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
        body = loads(raw)
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


def invalid_value(param: str, problem: str) -> InvalidRequest:
    """A request field a provider cannot translate: `'tools' must be an array of tools.`"""
    return InvalidRequest(f"'{param}' {problem}.", param=param, code="invalid_value")


def unsupported_part(part: object, where: str, models: str) -> InvalidRequest:
    """A content part that `models` (e.g. "Gemini models") cannot be sent."""
    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
    return InvalidRequest(
        f"Content part {kind!r} is not supported by {models}.",
        param=where,
        code="unsupported_value",
    )


def content_text(content: object, where: str, models: str) -> str:
    """The text of a string content or a list of text parts (system, developer, tool);
    any other part is refused as unsupported by `models`."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content if isinstance(content, list) else []):
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        else:
            raise unsupported_part(part, f"{where}.content[{i}]", models)
    return "\n\n".join(t for t in texts if t)


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


class _NonFinite(float):
    """NaN or an infinity that the standard library read from a lenient body. orjson would
    write it as `null`; refusing the type sends it to the standard library's encoder, which
    writes it back as it came."""


def _float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(value)


# Every digit to "0": an integer too long for 64 bits, which orjson would read as a float,
# shows as a run of 20 zeros, found far faster than by a regular expression.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 20


def loads(raw: bytes) -> Any:
    """Parsed JSON; ValueError (or UnicodeDecodeError) if it is not JSON.

    orjson reads strict JSON in a quarter of the standard library's time, to the same
    values. What it refuses (NaN, UTF-16, a BOM, malformed input), and integers too long
    for it, go to the standard library, which accepts or rejects them as before.
    """
    if _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw, parse_float=_float, parse_constant=_float)


def loads_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in `raw`, None if it holds another JSON value; ValueError if it is
    not JSON."""
    payload = loads(raw)
    return payload if isinstance(payload, dict) else None


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as `json.dumps(separators=(",", ":"), ensure_ascii=False)`
    writes it (floats may take a shorter exponent form: `1e-5` for `1e-05`)."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # integers past 64 bits, non-string keys, NaN: as the stdlib does
        return _ENCODER.encode(payload).encode()
