"""The OpenAI SDK through a running sidecar to a fake OpenAI-compatible upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ..fake_upstream import FakeUpstream, Reply, sse_reply
from ..support import ServerThread, assert_openai, fixture_bytes, fixture_json, iter_sse
from .conftest import API_KEY, Recorder, running_sidecar, sdk, sidecar_config

HELLO = [{"role": "user", "content": "Say hello"}]


def test_plain_answer_passes_through(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=HELLO,
        seed=7,
        response_format={"type": "text"},
        extra_body={"x_new": 1},
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "Hello! How can I assist you today?"
    assert raw.headers["x-sidecar-tier"] == "light"
    assert raw.headers["x-sidecar-model"] == "small"
    assert raw.headers["x-sidecar-request-id"].startswith("req_")
    assert_openai("CreateChatCompletionResponse", json.loads(raw.content))
    assert json.loads(raw.content) == fixture_json("openai/chat_completion.json")
    (call,) = upstream.calls
    assert call.body["model"] == "gpt-4o-mini"
    assert call.body["seed"] == 7
    assert call.body["response_format"] == {"type": "text"}
    assert call.body["x_new"] == 1
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
    assert "stream_options" not in call.body


@pytest.mark.parametrize(
    ("model", "tier", "model_id", "upstream_model"),
    [
        ("auto", "light", "small", "gpt-4o-mini"),
        ("frontier", "frontier", "big", "gpt-4o"),
        ("big", "frontier", "big", "gpt-4o"),
        ("loose", None, "loose", "loose-upstream-name"),
    ],
)
def test_model_names_a_tier_or_a_model(
    client: openai.OpenAI,
    upstream: FakeUpstream,
    model: str,
    tier: str | None,
    model_id: str,
    upstream_model: str,
) -> None:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HELLO)
    assert raw.headers.get("x-sidecar-tier") == tier
    assert raw.headers["x-sidecar-model"] == model_id
    assert upstream.calls[0].body["model"] == upstream_model


def _raw_stream(sidecar: ServerThread, **body: object) -> list[bytes]:
    request = {"model": "auto", "messages": HELLO, "stream": True, **body}
    with httpx.stream("POST", f"{sidecar.url}/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(iter_sse(response.read()))


def test_stream_hides_the_usage_chunk_the_client_did_not_ask_for(
    sidecar: ServerThread, client: openai.OpenAI, upstream: FakeUpstream, recorder: Recorder
) -> None:
    events = _raw_stream(sidecar)
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk)
    assert all(chunk["choices"] for chunk in chunks)
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        == "Hello! How can I help?"
    )
    assert upstream.calls[0].body["stream_options"] == {"include_usage": True}
    # The sidecar still knows the usage it hid.
    (record,) = recorder.wait()
    assert (record.usage.input_tokens, record.usage.output_tokens) == (19, 7)

    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model="auto", messages=HELLO, stream=True)
    )
    assert text == "Hello! How can I help?"


def test_stream_with_include_usage_gets_the_usage_chunk(
    sidecar: ServerThread, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    events = _raw_stream(sidecar, stream_options={"include_usage": True})
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert_openai("CreateChatCompletionStreamResponse", chunk)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 26

    stream = client.chat.completions.create(
        model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk.usage for chunk in stream if chunk.usage]
    assert [u.total_tokens for u in usage] == [26]


def test_stream_chunks_are_passed_on_as_they_arrive(
    sidecar: ServerThread, upstream: FakeUpstream
) -> None:
    upstream.queue(sse_reply(fixture_bytes("openai/chat_completion_stream.sse"), delay=0.3))
    request = {"model": "auto", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{sidecar.url}/v1/chat/completions", json=request) as response:
        first = next(response.iter_raw())
        # One event in hand while the upstream still has 2 s of events to send: not buffered.
        assert first.startswith(b"data: ")
        assert b"[DONE]" not in first


def test_tool_call_round_trip(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.queue(Reply(body=fixture_bytes("openai/chat_completion_tool_calls.json")))
    tools = fixture_json("openai/chat_completion_request.json")["tools"]
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Boston?"}]
    first = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert upstream.calls[0].body["tools"] == tools

    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 22}'},
    ]
    second = client.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert second.choices[0].message.content
    forwarded = upstream.calls[1].body["messages"]
    assert forwarded[1]["tool_calls"][0]["id"] == call.id
    assert forwarded[2] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": '{"temperature": 22}',
    }


def test_streamed_tool_call_arguments_arrive_whole(
    sidecar: ServerThread, client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    raw = fixture_bytes("openai/chat_completion_stream_tool_calls.sse")
    upstream.queue(sse_reply(raw), sse_reply(raw))
    for chunk in _raw_stream(sidecar)[:-1]:
        assert_openai("CreateChatCompletionStreamResponse", json.loads(chunk))
    arguments = ""
    for chunk in client.chat.completions.create(model="auto", messages=HELLO, stream=True):
        for choice in chunk.choices:
            for tool_call in choice.delta.tool_calls or []:
                arguments += tool_call.function.arguments or ""
    assert json.loads(arguments)


@pytest.mark.parametrize(
    ("status", "fixture", "exception"),
    [
        (400, "openai/error_400.json", openai.BadRequestError),
        (401, "openai/error_401.json", openai.AuthenticationError),
        (403, None, openai.PermissionDeniedError),
        (404, "openai/error_404_model.json", openai.NotFoundError),
        (422, None, openai.UnprocessableEntityError),
        (429, "openai/error_429.json", openai.RateLimitError),
        (500, "openai/error_500.json", openai.InternalServerError),
        (503, None, openai.InternalServerError),
        (400, "vllm/error_400.json", openai.BadRequestError),
    ],
)
def test_upstream_error_status_raises_the_matching_sdk_exception(
    sidecar: ServerThread,
    client: openai.OpenAI,
    upstream: FakeUpstream,
    status: int,
    fixture: str | None,
    exception: type[openai.APIStatusError],
) -> None:
    body = fixture_bytes(fixture) if fixture else b'{"detail": "nope"}'
    # A wait longer than routing.max_retry_wait_seconds: not retried, passed on.
    upstream.queue(Reply(status, body, {"retry-after": "30"} if status == 429 else {}))
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="auto", messages=HELLO)
    assert caught.value.status_code == status
    assert_openai("ErrorResponse", caught.value.body and {"error": caught.value.body})
    if fixture and fixture.startswith("openai/"):
        assert caught.value.body == fixture_json(fixture)["error"]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "30"


def test_error_event_mid_stream_raises_in_the_sdk(
    client: openai.OpenAI, upstream: FakeUpstream, recorder: Recorder
) -> None:
    upstream.queue(sse_reply(fixture_bytes("openai/chat_completion_stream_error.sse")))
    received = []
    with pytest.raises(openai.APIError, match="error while processing"):
        for chunk in client.chat.completions.create(model="auto", messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hel"]


def test_malformed_upstream_json_is_a_502(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.queue(Reply(200, b'{"id": "chatcmpl-x", "choices": ['))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="auto", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_malformed_response"


def test_unreachable_upstream_is_a_502(tmp_path: Path) -> None:
    config = sidecar_config("http://127.0.0.1:9")  # discard port: nothing listens
    with (
        running_sidecar(config, tmp_path) as sidecar,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        sdk(sidecar).chat.completions.create(model="auto", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_connection_error"


@pytest.fixture
def impatient_client(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread]
) -> Iterator[openai.OpenAI]:
    """A sidecar whose upstream timeouts are all 0.3 s."""
    _, server = upstream_server
    config = sidecar_config(server.url)
    config["providers"]["fake"]["timeouts"] = {"first_byte": 0.3, "idle": 0.3, "total": 0.3}
    with (
        running_sidecar(config, tmp_path) as sidecar,
        sdk(sidecar) as client,
    ):
        yield client


def test_upstream_silent_before_headers_is_a_504(
    impatient_client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.queue(Reply(body=fixture_bytes("openai/chat_completion.json"), wait=1.0))
    upstream.queue(Reply(chunks=[b"data: [DONE]\n\n"], wait=1.0, content_type="text/event-stream"))
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            list(
                impatient_client.chat.completions.create(
                    model="auto", messages=HELLO, stream=stream
                )
            )
        assert caught.value.status_code == 504
        assert caught.value.code == "upstream_timeout"


def test_stream_stalling_mid_body_ends_with_an_error_event(
    impatient_client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.queue(sse_reply(fixture_bytes("openai/chat_completion_stream.sse"), delay=1.0))
    received = []
    with pytest.raises(openai.APIError, match="next chunk"):
        for chunk in impatient_client.chat.completions.create(
            model="auto", messages=HELLO, stream=True
        ):
            received.append(chunk.choices[0].delta.content)
    assert received == [""]


def test_a_client_leaving_mid_stream_stops_the_stream_and_is_recorded(
    sidecar: ServerThread, upstream: FakeUpstream, recorder: Recorder
) -> None:
    """The upstream would take 3 s; the client leaves after the first chunk."""
    upstream.queue(sse_reply(fixture_bytes("openai/chat_completion_stream.sse"), delay=0.5))
    body = {"model": "auto", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{sidecar.url}/v1/chat/completions", json=body) as response:
        first = next(response.iter_raw())
    assert first.startswith(b"data: ")
    (record,) = recorder.wait()
    assert record.status == 200
    assert record.duration_s < 2


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (b'{"model": "auto", "messages": [', 400, None, "invalid_json"),
        (b"[1, 2]", 400, None, "invalid_json"),
        (b"", 400, None, "invalid_json"),
        (b'{"model": "auto"}', 400, "messages", "missing_required_parameter"),
        (b'{"model": "auto", "messages": []}', 400, "messages", "empty_array"),
        (
            b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}',
            400,
            "model",
            "invalid_type",
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": 5}]}',
            400,
            "messages[0].content",
            "invalid_type",
        ),
        (
            b'{"model": "auto", "messages": [{"content": "x"}]}',
            400,
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            b'{"model": "auto", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
            400,
            "stream",
            "invalid_type",
        ),
        (
            b'{"model": "gpt-5x", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model",
            "model_not_found",
        ),
    ],
)
def test_bad_request_gets_the_error_object_and_nothing_is_forwarded(
    sidecar: ServerThread,
    upstream: FakeUpstream,
    recorder: Recorder,
    body: bytes,
    status: int,
    param: str | None,
    code: str,
) -> None:
    response = httpx.post(
        f"{sidecar.url}/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    assert_openai("ErrorResponse", response.json())
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert response.headers["x-sidecar-request-id"]
    assert upstream.calls == []


def test_body_over_the_limit_is_a_413(tmp_path: Path, upstream: FakeUpstream) -> None:
    config = sidecar_config("http://127.0.0.1:9", server={"max_body_bytes": 1000})
    with running_sidecar(config, tmp_path) as sidecar:
        big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 2000}]}
        response = httpx.post(f"{sidecar.url}/v1/chat/completions", json=big)
        chunked = httpx.post(
            f"{sidecar.url}/v1/chat/completions",
            content=iter([json.dumps(big).encode()]),  # no content-length: counted as it streams
        )
    for answer in (response, chunked):
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "request_too_large"
    assert upstream.calls == []


def test_sdk_sees_unknown_model_as_not_found(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError, match="gpt-5x"):
        client.chat.completions.create(model="gpt-5x", messages=HELLO)
    assert upstream.calls == []


def test_models_lists_auto_tiers_and_models(client: openai.OpenAI, sidecar: ServerThread) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == ["auto", "light", "frontier", "onprem", "small", "big", "loose", "onprem-demo"]
    listing = httpx.get(f"{sidecar.url}/v1/models").json()
    assert_openai("ListModelsResponse", listing)


def test_health_ready_and_plugins(sidecar: ServerThread) -> None:
    health = httpx.get(f"{sidecar.url}/-/health").json()
    assert health["status"] == "ok"
    assert health["models"]["small"] == {
        "state": "closed",
        "available": True,
        "error_rate": health["models"]["small"]["error_rate"],
        "opened": 0,
        "latency_ms": health["models"]["small"]["latency_ms"],
    }
    ready = httpx.get(f"{sidecar.url}/-/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    plugins = httpx.get(f"{sidecar.url}/-/plugins").json()
    names = {plugin["name"]: plugin for plugin in plugins["plugins"]}
    assert names["sidecar.providers.openai"]["hooks"] == ["register_providers"]
    assert names["recorder"]["hooks"] == ["request_finished"]
    assert plugins["failed"] == []


def test_unknown_path_and_method_get_the_error_object(sidecar: ServerThread) -> None:
    missing = httpx.get(f"{sidecar.url}/v1/nothing")
    wrong_method = httpx.get(f"{sidecar.url}/v1/chat/completions")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    for response in (missing, wrong_method):
        assert_openai("ErrorResponse", response.json())


def test_request_finished_gets_a_record_without_prompt_text(
    client: openai.OpenAI, upstream: FakeUpstream, recorder: Recorder
) -> None:
    client.chat.completions.create(
        model="frontier", messages=[{"role": "user", "content": "secret words"}]
    )
    (record,) = recorder.wait()
    assert (record.tier, record.model_id, record.provider, record.status) == (
        "frontier",
        "big",
        "fake",
        200,
    )
    assert record.requested_model == "frontier"
    assert (record.usage.input_tokens, record.usage.output_tokens) == (19, 10)
    assert "secret words" not in repr(record)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("upstream", "gpt-4o-mini-2024-07-18"), ("requested", "auto"), ("model_id", "small")],
)
def test_response_model_field_rewrite(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], mode: str, expected: str
) -> None:
    _, upstream = upstream_server
    config = sidecar_config(upstream.url, server={"response_model": mode})
    with (
        running_sidecar(config, tmp_path) as sidecar,
        sdk(sidecar) as client,
    ):
        assert client.chat.completions.create(model="auto", messages=HELLO).model == expected
        stream = client.chat.completions.create(model="auto", messages=HELLO, stream=True)
        assert {chunk.model for chunk in stream} == {
            "gpt-4o-2024-08-06" if mode == "upstream" else expected
        }


def test_demo_provider_answers_offline(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer = client.chat.completions.create(model="onprem", messages=HELLO)
    assert "demo" in answer.choices[0].message.content
    assert "onprem-demo" in answer.choices[0].message.content
    assert answer.usage.prompt_tokens == 9  # "Say hello": 2, framing 4, reply priming 3
    streamed = client.chat.completions.create(
        model="onprem", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(streamed)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == answer.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens == answer.usage.completion_tokens
    assert upstream.calls == []
