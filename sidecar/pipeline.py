"""One request: decide -> plan -> attempt -> finish.

The pipeline is HTTP-agnostic: it takes a parsed `ChatRequest` and returns the provider's
`Completion`, or a stream whose first chunk has already arrived, so that a failure before
any byte reaches the client still becomes a proper error status. What happened is kept in
an `Exchange`, which becomes the `RequestRecord` observers receive.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import NoTargetAvailable, RequestFailed
from .provider import Completion, StreamChunk, Target, UpstreamCall, Usage
from .record import RequestRecord
from .routing import Decision, plan
from .runtime import Runtime
from .wire.openai import ChatRequest


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


@dataclass(slots=True)
class Exchange:
    """The mutable state of one request while it runs."""

    request_id: str = field(default_factory=new_request_id)
    started_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    request: ChatRequest | None = None
    decision: Decision | None = None
    target: Target | None = None
    usage: Usage | None = None
    status: int = 200
    error_type: str | None = None

    def failed(self, exc: RequestFailed) -> None:
        self.status = exc.status_code
        self.error_type = exc.error_type

    def record(self) -> RequestRecord:
        target = self.target
        return RequestRecord(
            request_id=self.request_id,
            started_at=self.started_at,
            duration_s=time.perf_counter() - self.started,
            status=self.status,
            stream=self.request.stream if self.request else False,
            requested_model=self.request.model if self.request else "",
            tier=self.decision.tier if self.decision else None,
            model_id=target.model_id if target else None,
            provider=target.provider if target else None,
            policy=self.decision.policy if self.decision else None,
            usage=self.usage,
            error_type=self.error_type,
        )


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def _prepare(
        self, request: ChatRequest, headers: Mapping[str, str], exchange: Exchange
    ) -> tuple[Target, UpstreamCall]:
        exchange.request = request
        exchange.decision = decision = self._runtime.router.decide(request, headers)
        targets = plan(decision, self._runtime.settings)
        if not targets:
            raise NoTargetAvailable(f"No model is configured for tier {decision.tier!r}.")
        target = exchange.target = targets[0]
        body: dict[str, Any] = {**request.body, "model": target.upstream_model}
        if request.stream:
            # Always ask for usage, so cost is known; the extra chunk is hidden from a
            # client that did not ask for it.
            body["stream_options"] = {
                **(request.body.get("stream_options") or {}),
                "include_usage": True,
            }
        return target, UpstreamCall(body, target, exchange.request_id)

    async def complete(
        self, request: ChatRequest, headers: Mapping[str, str], exchange: Exchange
    ) -> Completion:
        target, call = self._prepare(request, headers, exchange)
        completion = await self._runtime.providers[target.provider].complete(call)
        exchange.usage = completion.usage
        return completion

    async def open_stream(
        self, request: ChatRequest, headers: Mapping[str, str], exchange: Exchange
    ) -> AsyncIterator[StreamChunk]:
        """The stream, its first chunk already received (so failures so far raise here)."""
        target, call = self._prepare(request, headers, exchange)
        chunks = self._runtime.providers[target.provider].stream(call)
        first = await anext(chunks, None)
        return _observed(first, chunks, exchange)


async def _observed(
    first: StreamChunk | None, rest: AsyncIterator[StreamChunk], exchange: Exchange
) -> AsyncIterator[StreamChunk]:
    """Re-attach the first chunk and note the usage as it passes."""
    try:
        if first is not None:
            if first.usage is not None:
                exchange.usage = first.usage
            yield first
            async for chunk in rest:
                if chunk.usage is not None:
                    exchange.usage = chunk.usage
                yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
