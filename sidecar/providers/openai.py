"""Provider kind `openai`: any OpenAI-compatible chat completions API.

OpenAI itself, vLLM, Ollama's /v1, LM Studio, llama.cpp's server, TGI and most gateways.
Requests go out as the client wrote them (model swapped for the upstream name); answers
come back as received. Streams are passed on chunk by chunk, never buffered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..errors import upstream_status_error
from ..hookspecs import hookimpl
from ..provider import Completion, ProviderKind, StreamChunk, UpstreamCall, Usage
from ..settings import ProviderSettings
from ..upstream import Endpoint
from ..wire import sse
from ..wire.openai import dumps

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        headers = {"content-type": "application/json", "accept": "application/json"}
        api_key = settings.api_key()
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self._endpoint = Endpoint(client, url, headers, settings)

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"OpenAIProvider(name={self.settings.name!r}, url={self._endpoint.url!r})"

    async def complete(self, call: UpstreamCall) -> Completion:
        raw = await self._endpoint.post(dumps(call.body), call.headers)
        payload = self._endpoint.json(raw)
        return Completion(payload, Usage.from_openai(payload.get("usage")), raw)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        finished = False
        async with contextlib.aclosing(
            self._endpoint.events(dumps(call.body), call.headers)
        ) as events:
            async for event in events:
                if event.data == sse.DONE:
                    return
                payload = self._endpoint.json(event.data)
                if "error" in payload:
                    raise upstream_status_error(500, event.data, self.settings.name)
                finished = finished or _finishes(payload)
                yield StreamChunk(payload, Usage.from_openai(payload.get("usage")), event.data)
        if not finished:  # some servers end a complete stream without [DONE]; a cut one is not
            raise self._endpoint.truncated()

    async def aclose(self) -> None:
        return None


def _finishes(payload: dict[str, Any]) -> bool:
    choices = payload.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") for c in choices
    )


@hookimpl(trylast=True)
def register_providers() -> ProviderKind:
    return ProviderKind("openai", OpenAIProvider)
