"""The `azure_openai` provider against httpx's MockTransport: what it sends, what it returns."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_azure import (
    API_KEY,
    CONTENT_FILTER_ERROR,
    ENTRA_TOKEN,
    completion,
    rate_limited,
    stream_events,
)
from sidecar_azure_openai import AzureOpenAIProvider

from sidecar import (
    Completion,
    ConfigError,
    ProviderSettings,
    StreamChunk,
    Target,
    UpstreamCall,
    UpstreamStatusError,
    UpstreamUnavailable,
    Usage,
)
from sidecar.settings import Timeouts

KEY_ENV = "SIDECAR_AZURE_UNIT_KEY"
ENDPOINT = "https://contoso.openai.azure.com"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)


def provider_settings(**options: Any) -> ProviderSettings:
    key_file = options.pop("api_key_file", None)
    return ProviderSettings(
        name="azure",
        kind="azure_openai",
        base_url=ENDPOINT,
        api_key_env=None if key_file else KEY_ENV,
        api_key_file=key_file,
        timeouts=Timeouts(connect=1, first_byte=2, idle=2, total=5),
        options=options,
    )


def call(deployment: str = "prod-gpt-4o", stream: bool = False) -> UpstreamCall:
    body: dict[str, Any] = {"model": deployment, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    target = Target("gpt-4o", "azure", deployment, "frontier", False)
    return UpstreamCall(body, target, "req_1", {"traceparent": TRACEPARENT})


def run(
    handler: Handler,
    use: Callable[[AzureOpenAIProvider], Any],
    settings: ProviderSettings | None = None,
) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            provider = AzureOpenAIProvider(settings or provider_settings(), client)
            return await use(provider)

    return asyncio.run(main())


def answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=payload, headers=headers)


def sse(events: list[bytes]) -> Handler:
    """A streamed answer, in pieces that split events anywhere."""

    async def pieces(raw: bytes, size: int = 7) -> AsyncIterator[bytes]:
        for start in range(0, len(raw), size):
            yield raw[start : start + size]

    def handler(request: httpx.Request) -> httpx.Response:
        content = pieces(b"".join(events))
        return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})

    return handler


async def collect(provider: AzureOpenAIProvider, upstream_call: UpstreamCall) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(upstream_call)]


def test_a_request_carries_the_key_the_trace_context_and_the_deployment_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    result: Completion = run(handler, lambda p: p.complete(call()))
    [request] = seen
    assert str(request.url) == (
        f"{ENDPOINT}/openai/deployments/prod-gpt-4o/chat/completions?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == API_KEY
    assert request.headers["traceparent"] == TRACEPARENT
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert json.loads(request.content)["messages"] == [{"role": "user", "content": "hi"}]
    assert result.payload["choices"][0]["message"]["content"] == "Hello from Azure."
    assert result.usage == Usage(input_tokens=9, output_tokens=7)
    assert result.raw is not None  # forwarded as received
    assert json.loads(result.raw) == completion()


def test_one_endpoint_per_deployment_made_on_first_use() -> None:
    async def use(provider: AzureOpenAIProvider) -> None:
        first = provider.endpoint("a")
        assert provider.endpoint("a") is first
        assert provider.endpoint("b") is not first
        assert provider.endpoint("b").url.startswith(f"{ENDPOINT}/openai/deployments/b/")

    run(answer(completion()), use)


def test_v1_shares_one_endpoint_and_sends_no_api_version() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    async def use(provider: AzureOpenAIProvider) -> None:
        assert provider.endpoint("a") is provider.endpoint("b")
        await provider.complete(call("prod-gpt-4o"))

    run(handler, use, provider_settings(api_version="v1"))
    assert str(seen[0].url) == f"{ENDPOINT}/openai/v1/chat/completions"
    assert json.loads(seen[0].content)["model"] == "prod-gpt-4o"


def test_a_stream_drops_the_annotation_chunks_and_keeps_usage() -> None:
    chunks: list[StreamChunk] = run(
        sse(stream_events(annotations=True)), lambda p: collect(p, call(stream=True))
    )
    assert all(chunk.payload["choices"] for chunk in chunks[:-1])
    assert all("delta" in c for chunk in chunks for c in chunk.payload["choices"])
    assert "prompt_filter_results" not in chunks[0].payload
    assert chunks[0].payload["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1].payload["choices"] == []
    assert chunks[-1].usage == Usage(input_tokens=9, output_tokens=7)
    text = "".join(c.payload["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == "Hello from Azure."
    assert all(chunk.raw is not None for chunk in chunks)  # forwarded as received


def test_a_stream_cut_before_its_finish_is_an_error() -> None:
    events = stream_events()[:3]  # prompt filter, role, one piece; no finish, no [DONE]
    with pytest.raises(UpstreamUnavailable) as caught:
        run(sse(events), lambda p: collect(p, call(stream=True)))
    assert caught.value.code == "upstream_stream_truncated"


def test_an_error_event_in_a_stream_raises() -> None:
    events = [*stream_events()[:2], b'data: {"error": {"message": "boom", "code": "500"}}\n\n']
    with pytest.raises(UpstreamStatusError) as caught:
        run(sse(events), lambda p: collect(p, call(stream=True)))
    assert caught.value.status_code == 500
    assert caught.value.message == "boom"


@pytest.mark.parametrize("stream", [False, True])
def test_a_content_filter_refusal_keeps_its_status_and_code(stream: bool) -> None:
    async def use(provider: AzureOpenAIProvider) -> Any:
        if stream:
            return await collect(provider, call(stream=True))
        return await provider.complete(call())

    with pytest.raises(UpstreamStatusError) as caught:
        run(answer(CONTENT_FILTER_ERROR, 400), use)
    error = caught.value
    assert (error.status_code, error.code, error.param) == (400, "content_filter", "prompt")
    assert error.error_type == "invalid_request_error"  # not Azure's numeric `status`


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7", "retry-after-ms": "6500"}, "7"),
        ({"retry-after-ms": "1500"}, "2"),
        ({"retry-after-ms": "0"}, "0"),
        ({"x-ms-retry-after-ms": "250.5"}, "1"),
        ({"retry-after-ms": "soon"}, None),
        ({}, None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_429_passes_on_its_wait_in_whole_seconds(
    headers: dict[str, str], expected: str | None, stream: bool
) -> None:
    async def use(provider: AzureOpenAIProvider) -> Any:
        if stream:
            return await collect(provider, call(stream=True))
        return await provider.complete(call())

    with pytest.raises(UpstreamStatusError) as caught:
        run(answer(rate_limited("prod-gpt-4o"), 429, headers), use)
    assert caught.value.status_code == 429
    assert caught.value.headers.get("retry-after") == expected


def test_entra_id_sends_a_bearer_token_reread_when_its_file_changes(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ENTRA_TOKEN + "\n")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    async def use(provider: AzureOpenAIProvider) -> None:
        await provider.complete(call())
        replacement = tmp_path / "token.new"  # written aside and renamed, as refreshers do
        replacement.write_text("refreshed-token")
        os.replace(replacement, token_file)
        await provider.complete(call())
        token_file.unlink()  # a refresher mid-rotation: the last good token stays
        await provider.complete(call())
        token_file.write_text("   ")
        await provider.complete(call())

    settings = provider_settings(auth="entra_id", api_key_file=token_file)
    run(handler, use, settings)
    bearers = [request.headers["authorization"] for request in seen]
    assert bearers == [f"Bearer {ENTRA_TOKEN}"] + ["Bearer refreshed-token"] * 3
    assert all("api-key" not in request.headers for request in seen)


def test_a_key_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("old-key")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["api-key"])
        return httpx.Response(200, json=completion())

    async def use(provider: AzureOpenAIProvider) -> None:
        await provider.complete(call())
        key_file.write_text("new-key-longer")
        await provider.complete(call())

    run(handler, use, provider_settings(api_key_file=key_file))
    assert seen == ["old-key", "new-key-longer"]


def test_a_missing_key_is_a_config_error_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError) as caught:
        run(answer(completion()), lambda p: p.aclose())
    assert [p.path for p in caught.value.problems] == ["providers.azure.api_key_env"]


def test_bad_options_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        run(answer(completion()), lambda p: p.aclose(), provider_settings(api_version="x"))
    assert [p.path for p in caught.value.problems] == ["providers.azure.api_version"]


def test_no_repr_shows_the_secret(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ENTRA_TOKEN)

    async def reprs(provider: AzureOpenAIProvider) -> list[str]:
        return [repr(provider), repr(provider.endpoint("prod-gpt-4o")), repr(provider.options)]

    texts = run(answer(completion()), reprs)
    texts += run(
        answer(completion()), reprs, provider_settings(auth="entra_id", api_key_file=token_file)
    )
    assert "Credential(api_key, env SIDECAR_AZURE_UNIT_KEY)" in texts[0]
    assert f"Credential(entra_id, file {token_file})" in texts[3]
    for text in texts:
        assert API_KEY not in text
        assert ENTRA_TOKEN not in text
