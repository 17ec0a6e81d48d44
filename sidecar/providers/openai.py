"""Provider kind `openai`: any OpenAI-compatible chat completions API.

OpenAI itself, vLLM, Ollama's /v1, LM Studio, llama.cpp's server, TGI and most gateways.
Requests go out as the client wrote them (model swapped for the upstream name); answers
come back as received. Streams are passed on chunk by chunk, never buffered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..errors import UpstreamUnavailable, upstream_status_error
from ..hookspecs import hookimpl
from ..provider import Completion, ProviderKind, StreamChunk, UpstreamCall, Usage
from ..settings import ProviderSettings
from ..upstream import transport_failure
from ..wire import sse
from ..wire.openai import dumps

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self._client = client
        self._url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        api_key = settings.api_key()
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        # Compression would make upstream proxies buffer a stream; ask for none.
        self._stream_headers = {**self._headers, "accept-encoding": "identity"}
        t = settings.timeouts
        self._plain_timeout = httpx.Timeout(t.total, connect=t.connect)
        self._stream_timeout = httpx.Timeout(max(t.first_byte, t.idle), connect=t.connect)

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"OpenAIProvider(name={self.settings.name!r}, url={self._url!r})"

    async def complete(self, call: UpstreamCall) -> Completion:
        try:
            async with asyncio.timeout(self.settings.timeouts.total):
                response = await self._client.post(
                    self._url,
                    content=dumps(call.body),
                    headers=self._headers,
                    timeout=self._plain_timeout,
                )
        except (TimeoutError, httpx.TransportError) as exc:
            raise self._failure(exc, "an answer", self.settings.timeouts.total) from None
        if response.status_code >= 400:
            raise upstream_status_error(
                response.status_code, response.content, self.settings.name, _passed_on(response)
            )
        payload = self._json(response.content)
        return Completion(payload, Usage.from_openai(payload.get("usage")), response.content)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        timeouts = self.settings.timeouts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        request = self._client.build_request(
            "POST",
            self._url,
            content=dumps(call.body),
            headers=self._stream_headers,
            timeout=self._stream_timeout,
        )
        try:
            async with asyncio.timeout(min(timeouts.first_byte, timeouts.total)):
                response = await self._client.send(request, stream=True)
        except (TimeoutError, httpx.TransportError) as exc:
            raise self._failure(exc, "the first byte", timeouts.first_byte) from None
        try:
            if response.status_code >= 400:
                body = await response.aread()
                raise upstream_status_error(
                    response.status_code, body, self.settings.name, _passed_on(response)
                )
            decoder = sse.Decoder()
            chunks = response.aiter_raw()
            finished = False
            while True:
                wait = min(timeouts.idle, deadline - loop.time())
                try:
                    async with asyncio.timeout(wait):
                        chunk = await anext(chunks, None)
                except (TimeoutError, httpx.TransportError) as exc:
                    raise self._failure(exc, "the next chunk", wait) from None
                events = decoder.feed(chunk) if chunk is not None else decoder.flush()
                for event in events:
                    if event.data == sse.DONE:
                        return
                    payload = self._json(event.data)
                    if "error" in payload:
                        raise upstream_status_error(500, event.data, self.settings.name)
                    usage = Usage.from_openai(payload.get("usage"))
                    finished = finished or _finishes(payload)
                    yield StreamChunk(payload, usage, event.data)
                if chunk is None:
                    if finished:  # some servers end a complete stream without [DONE]
                        return
                    raise UpstreamUnavailable(
                        f"Upstream {self.settings.name!r} ended the stream before the answer "
                        "was complete.",
                        code="upstream_stream_truncated",
                    )
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        return None

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise UpstreamUnavailable(
                f"Upstream {self.settings.name!r} sent a malformed answer (not a JSON object).",
                code="upstream_malformed_response",
            )
        return payload

    def _failure(self, exc: BaseException, waiting_for: str, seconds: float) -> UpstreamUnavailable:
        return transport_failure(self.settings.name, exc, waiting_for, seconds)


def _finishes(payload: dict[str, Any]) -> bool:
    choices = payload.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") for c in choices
    )


def _passed_on(response: httpx.Response) -> dict[str, str]:
    retry_after = response.headers.get("retry-after")
    return {"retry-after": retry_after} if retry_after else {}


@hookimpl(trylast=True)
def register_providers() -> ProviderKind:
    return ProviderKind("openai", OpenAIProvider)
