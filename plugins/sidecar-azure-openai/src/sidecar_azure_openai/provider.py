"""Provider kind `azure_openai`: Azure OpenAI deployments, speaking OpenAI chat completions.

Azure answers in OpenAI's format with additions: content-filter results on answers and
chunks (passed on untouched), and, in streams, chunks that carry only content-filter
annotations: a first chunk with empty `choices` and `prompt_filter_results`, and with the
asynchronous filter, choices without a `delta`. An OpenAI client never receives such
chunks from OpenAI (code written against it reads `chunk.choices[0].delta`), so they are
dropped here. One more difference:

- A content-filter refusal is a 400 with `code: content_filter`, passed on as it is.

The core already reads Azure's errors (`type: null` with a numeric `status`) as OpenAI
type names, and a wait given only as `retry-after-ms` as `Retry-After`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from sidecar import (
    Completion,
    ProviderSettings,
    StreamChunk,
    UpstreamCall,
    Usage,
)
from sidecar.errors import upstream_status_error
from sidecar.upstream import Endpoint
from sidecar.wire import sse
from sidecar.wire.openai import dumps

from .auth import Credential
from .options import AzureOptions

JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


class AzureOpenAIProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.options = AzureOptions.from_settings(settings)
        self._credential = Credential(settings, self.options.auth)
        self._client = client
        self._endpoints: dict[str, Endpoint] = {}

    def __repr__(self) -> str:  # never the credential's value
        return (
            f"AzureOpenAIProvider(name={self.settings.name!r}, "
            f"endpoint={self.options.endpoint!r}, api_version={self.options.api_version!r}, "
            f"credential={self._credential!r})"
        )

    def endpoint(self, deployment: str) -> Endpoint:
        """The Endpoint of a deployment, made on first use (v1: one for all)."""
        key = deployment if self.options.per_deployment else ""
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            url = self.options.chat_url(deployment)
            endpoint = self._endpoints[key] = Endpoint(
                self._client, url, JSON_HEADERS, self.settings
            )
        return endpoint

    async def complete(self, call: UpstreamCall) -> Completion:
        endpoint = self.endpoint(call.target.upstream_model)
        raw = await endpoint.post(dumps(call.body), self._headers(call))
        payload = endpoint.json(raw)
        return Completion(payload, Usage.from_openai(payload.get("usage")), raw)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        endpoint = self.endpoint(call.target.upstream_model)
        finished = False
        async with contextlib.aclosing(
            endpoint.events(dumps(call.body), self._headers(call))
        ) as events:
            async for event in events:
                if event.data == sse.DONE:
                    return
                payload = endpoint.json(event.data)
                if "error" in payload:
                    raise upstream_status_error(500, event.data, self.settings.name)
                finished = finished or _finishes(payload)
                usage = Usage.from_openai(payload.get("usage"))
                if usage is None and not _has_delta(payload):
                    continue  # content-filter annotations only
                yield StreamChunk(payload, usage, event.data)
        if not finished:
            raise endpoint.truncated()

    async def aclose(self) -> None:
        return None

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        return {**call.headers, **self._credential.header()}


def _finishes(payload: dict[str, Any]) -> bool:
    choices = payload.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") for c in choices
    )


def _has_delta(payload: dict[str, Any]) -> bool:
    choices = payload.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and "delta" in c for c in choices)
