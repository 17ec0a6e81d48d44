"""`parse_chat_request`: what it accepts, keeps, and rejects (with OpenAI's param and code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.errors import InvalidRequest
from sidecar.wire.openai import dumps, loads, loads_object, parse_chat_request, prompt_text

SPEC = (Path(__file__).resolve().parents[1] / "../shared/spec").resolve()
REQUEST_FIXTURE = SPEC / "fixtures/openai/chat_completion_request.json"

USER = {"role": "user", "content": "hi"}


def body(**fields: Any) -> bytes:
    payload: dict[str, Any] = {"model": "auto", "messages": [USER]}
    payload.update(fields)
    return json.dumps(payload).encode()


def without(name: str) -> bytes:
    payload: dict[str, Any] = {"model": "auto", "messages": [USER]}
    del payload[name]
    return json.dumps(payload).encode()


def test_accepts_the_openai_fixture() -> None:
    raw = REQUEST_FIXTURE.read_bytes()

    request = parse_chat_request(raw)

    assert request.body == json.loads(raw)
    assert request.model == "gpt-4o-mini"
    assert request.stream is True
    assert request.include_usage is True
    assert [m["role"] for m in request.messages] == ["developer", "user"]
    assert request.body["tool_choice"] == "auto"
    assert request.body["max_completion_tokens"] == 256


def test_keeps_unknown_fields() -> None:
    extra = {"reasoning_effort": "low", "x_future": {"nested": [1, 2]}, "seed": 7}
    message = {"role": "user", "content": "hi", "name": "bob", "x_message_field": True}

    request = parse_chat_request(body(messages=[message], **extra))

    for key, value in extra.items():
        assert request.body[key] == value
    assert request.messages == [message]
    assert request.body["messages"] is request.messages


def test_defaults_without_stream_fields() -> None:
    request = parse_chat_request(body())
    assert (request.model, request.stream, request.include_usage) == ("auto", False, False)


@pytest.mark.parametrize(
    ("fields", "stream", "include_usage"),
    [
        ({"stream": None}, False, False),
        ({"stream": False}, False, False),
        ({"stream": True}, True, False),
        ({"stream": True, "stream_options": None}, True, False),
        ({"stream": True, "stream_options": {}}, True, False),
        ({"stream": True, "stream_options": {"include_usage": False}}, True, False),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, True, False),
        ({"stream": True, "stream_options": {"include_usage": 1}}, True, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, True, True),
    ],
)
def test_reads_stream_and_include_usage(
    fields: dict[str, Any], stream: bool, include_usage: bool
) -> None:
    request = parse_chat_request(body(**fields))
    assert (request.stream, request.include_usage) == (stream, include_usage)


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": [{"role": "assistant", "content": None, "tool_calls": []}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
        {"messages": [{"role": role, "content": "x"} for role in ("system", "tool", "function")]},
        {"max_tokens": None, "temperature": None, "tools": None, "user": None},
        {"max_tokens": 10, "max_completion_tokens": 5, "n": 2},
        {"temperature": 0, "top_p": 0.5, "presence_penalty": -1, "frequency_penalty": 1.5},
        {"tools": [], "user": "u-1"},
    ],
)
def test_accepts_valid_variants(fields: dict[str, Any]) -> None:
    assert parse_chat_request(body(**fields)).body == {**json.loads(body()), **fields}


JSON_NAMES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "list": "array",
    "dict": "object",
    "bool": "boolean",
    "NoneType": "null",
}


def _invalid_type(param: str, expected: str, got: str) -> tuple[str, str, str]:
    """Messages name JSON types, as the client wrote them, not Python's."""
    got = JSON_NAMES.get(got, got)
    return param, "invalid_type", f"Invalid type for '{param}': expected {expected}, but got {got}."


def _missing(param: str) -> tuple[str, str, str]:
    return param, "missing_required_parameter", f"Missing required parameter: '{param}'."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(without("model"), _missing("model"), id="missing-model"),
        pytest.param(body(model=None), _missing("model"), id="null-model"),
        pytest.param(body(model=5), _invalid_type("model", "a string", "int"), id="int-model"),
        pytest.param(
            body(model=["auto"]),
            _invalid_type("model", "a string", "list"),
            id="list-model",
        ),
        pytest.param(without("messages"), _missing("messages"), id="missing-messages"),
        pytest.param(
            body(messages="hi"), _invalid_type("messages", "an array", "str"), id="str-messages"
        ),
        pytest.param(
            body(messages={"role": "user"}),
            _invalid_type("messages", "an array", "dict"),
            id="object-messages",
        ),
        pytest.param(
            body(messages=[]),
            ("messages", "empty_array", "'messages' must contain at least one message."),
            id="empty-messages",
        ),
        pytest.param(
            body(messages=[USER, "hi"]),
            _invalid_type("messages[1]", "an object", "str"),
            id="message-not-object",
        ),
        pytest.param(
            body(messages=[None]),
            _invalid_type("messages[0]", "an object", "null"),
            id="message-null",
        ),
        pytest.param(
            body(messages=[USER, {"content": "x"}]), _missing("messages[1].role"), id="no-role"
        ),
        pytest.param(
            body(messages=[{"role": "wizard", "content": "x"}]),
            (
                "messages[0].role",
                "invalid_value",
                "Invalid value for 'messages[0].role': expected one of "
                "assistant, developer, function, system, tool, user.",
            ),
            id="unknown-role",
        ),
        pytest.param(
            body(messages=[{"role": 1, "content": "x"}]),
            _invalid_type("messages[0].role", "a string", "int"),
            id="int-role",
        ),
        pytest.param(
            body(messages=[USER, {"role": "user", "content": 5}]),
            _invalid_type("messages[1].content", "a string or an array of content parts", "int"),
            id="int-content",
        ),
        pytest.param(
            body(messages=[{"role": "user", "content": {"text": "x"}}]),
            _invalid_type("messages[0].content", "a string or an array of content parts", "dict"),
            id="object-content",
        ),
        pytest.param(
            body(stream="yes"), _invalid_type("stream", "a boolean", "str"), id="stream-str"
        ),
        pytest.param(body(stream=1), _invalid_type("stream", "a boolean", "int"), id="stream-int"),
        pytest.param(
            body(stream_options=[]),
            _invalid_type("stream_options", "an object", "list"),
            id="stream-options-list",
        ),
        pytest.param(
            body(stream_options=True),
            _invalid_type("stream_options", "an object", "bool"),
            id="stream-options-bool",
        ),
        pytest.param(
            body(max_tokens=1.5),
            _invalid_type("max_tokens", "an integer", "float"),
            id="max-tokens-float",
        ),
        pytest.param(
            body(max_tokens="100"),
            _invalid_type("max_tokens", "an integer", "str"),
            id="max-tokens-str",
        ),
        pytest.param(
            body(max_tokens=True),
            _invalid_type("max_tokens", "an integer", "bool"),
            id="max-tokens-true",
        ),
        pytest.param(
            body(max_completion_tokens=False),
            _invalid_type("max_completion_tokens", "an integer", "bool"),
            id="max-completion-tokens-bool",
        ),
        pytest.param(body(n=2.0), _invalid_type("n", "an integer", "float"), id="n-float"),
        pytest.param(
            body(temperature="0.2"),
            _invalid_type("temperature", "a number", "str"),
            id="temperature-str",
        ),
        pytest.param(
            body(temperature=True),
            _invalid_type("temperature", "a number", "bool"),
            id="temperature-bool",
        ),
        pytest.param(body(top_p=[1]), _invalid_type("top_p", "a number", "list"), id="top-p-list"),
        pytest.param(
            body(tools={"type": "function"}),
            _invalid_type("tools", "an array", "dict"),
            id="tools-object",
        ),
        pytest.param(body(user=5), _invalid_type("user", "a string", "int"), id="user-int"),
    ],
)
def test_rejects(raw: bytes, expected: tuple[str, str, str]) -> None:
    param, code, message = expected
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw)
    exc = info.value
    assert (exc.param, exc.code, exc.status_code, exc.message) == (param, code, 400, message)
    assert exc.error_type == "invalid_request_error"


def test_rejects_empty_model() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body(model=""))
    exc = info.value
    assert (exc.param, exc.code, exc.status_code) == ("model", "invalid_value", 400)
    assert exc.message == "'model' must not be empty."


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"model": "auto",}', b"not json", b"\xff\xfe\xfd", b'{"model": "a"} trailing'],
)
def test_rejects_malformed_json(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw)
    exc = info.value
    assert (exc.param, exc.code, exc.status_code) == (None, "invalid_json", 400)
    assert exc.message.startswith("We could not parse the JSON body of your request: ")


@pytest.mark.parametrize("raw", [b"[]", b'"auto"', b"1", b"null", b"true"])
def test_rejects_non_object_body(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw)
    exc = info.value
    assert (exc.param, exc.code, exc.status_code, exc.message) == (
        None,
        "invalid_json",
        400,
        "The request body must be a JSON object.",
    )


@pytest.mark.parametrize("role", [["user"], {"name": "user"}])
def test_rejects_unhashable_role(role: object) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body(messages=[{"role": role, "content": "x"}]))
    assert info.value.param == "messages[0].role"


def test_prompt_text_joins_text_and_skips_images() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "in this picture?"},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": "42"},
    ]
    assert prompt_text(messages) == "Be brief.\nWhat is\nin this picture?\n42"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "assistant", "content": None}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "user", "content": [{"type": "text", "text": 5}, "loose string"]}],
    ],
)
def test_prompt_text_without_text_is_empty(messages: list[dict[str, Any]]) -> None:
    assert prompt_text(messages) == ""


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400, "e": 1.5}',
        b'{"big": 123456789012345678901234567890, "neg": -98765432109876543210987}',
        b'\xef\xbb\xbf{"bom": "\\u00e9"}',
        '{"utf16": "\u00e9"}'.encode("utf-16"),
        b'{"n": null, "t": [true, false, 0, -0.0, 0.5], "digits": "12345678901234567890123"}',
        b'{"max_tokens": 18446744073709551615, "seed": -9223372036854775808}',
    ],
)
def test_json_reads_and_writes_what_the_standard_library_does(raw: bytes) -> None:
    ours, theirs = loads(raw), json.loads(raw)
    assert repr(ours) == repr(theirs)
    assert json.loads(dumps(ours)) == json.loads(json.dumps(theirs)) or ours != ours
    assert dumps(ours).decode("utf-8", "surrogatepass") == json.dumps(
        theirs, separators=(",", ":"), ensure_ascii=False
    )


@pytest.mark.parametrize("raw", [b"{broken", b"", b"[1,", b'{"a": 1} x', b"\xff"])
def test_json_errors_are_the_standard_librarys(raw: bytes) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)) as ours:
        loads(raw)
    with pytest.raises((ValueError, UnicodeDecodeError)) as theirs:
        json.loads(raw)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_dumps_is_compact_utf8_json() -> None:
    payload = {"model": "gpt-4o", "messages": [{"role": "user", "content": 'héllo \u2028\n"'}]}
    assert dumps(payload) == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    lone = loads(b'{"lone": "\\ud800"}')
    assert lone == json.loads(b'{"lone": "\\ud800"}')
    with pytest.raises(UnicodeEncodeError):  # as the standard library's encoding fails
        dumps(lone)
    assert loads_object(b"[1]") is None
    assert loads_object(b'{"a": 1}') == {"a": 1}
