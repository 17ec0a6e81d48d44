"""One request: decide -> plan -> attempt, falling back -> finish.

The pipeline is HTTP-agnostic: it takes a parsed `ChatRequest` and returns the provider's
`Completion`, or a stream whose first chunk has already arrived, so that a failure before
any byte reaches the client still falls back, or becomes a proper error status. What
happened is kept in an `Exchange`, which becomes the `RequestRecord` observers receive.

Attempts: the plan's targets in order (the route's tier, then its fallback tiers), minus
those outside the data boundary and those whose breaker is open. A retryable failure
(connection, timeout, 408, 429, 5xx) is recorded on the target's breaker and the
`choose_fallback` hook picks what comes next; a `Retry-After` that fits the deadline is
waited out on the same target. Anything else goes back to the client as it came.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .cost import Pricing
from .errors import NoTargetAvailable, RequestFailed, UpstreamUnavailable, error_kind
from .fallback import STOP, retry_after, retryable, within_boundary
from .provider import Completion, Provider, StreamChunk, Target, UpstreamCall, Usage
from .record import RequestRecord
from .routing import Decision, plan
from .runtime import Runtime
from .telemetry import NO_TRACE, RequestTrace
from .wire.openai import ChatRequest

logger = logging.getLogger("sidecar")

T = TypeVar("T")


# An identifier, not a secret: no system call per request, as os.urandom makes (releasing
# the interpreter lock, then waiting behind the telemetry exporter's thread to get it back).
# A generator of its own, seeded by the system: a plugin seeding `random` cannot make ids
# repeat.
_ids = random.Random()


def new_request_id() -> str:
    return f"req_{_ids.getrandbits(96):024x}"


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
    attempts: int = 0
    last_failure: str | None = None
    """`error_kind` of the latest failed attempt."""
    fallback_reason: str | None = None
    response_model: str | None = None
    trace: RequestTrace = NO_TRACE

    def failed(self, exc: RequestFailed) -> None:
        self.status = exc.status_code
        self.error_type = exc.error_type

    def record(self, pricing: Pricing | None = None) -> RequestRecord:
        target = self.target
        costs = pricing.costs(target.model_id, self.usage) if pricing and target else None
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
            attempts=self.attempts,
            confidential=self.decision.confidential if self.decision else False,
            cost_usd=costs.cost_usd if costs else None,
            baseline_cost_usd=costs.baseline_cost_usd if costs else None,
            response_model=self.response_model,
            fallback_reason=self.fallback_reason,
        )


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def complete(
        self, request: ChatRequest, headers: Mapping[str, str], exchange: Exchange
    ) -> Completion:
        completion = await self._attempts(request, headers, exchange, _complete)
        exchange.usage = completion.usage
        model = completion.payload.get("model")
        exchange.response_model = model if isinstance(model, str) else None
        exchange.trace.attempt_succeeded(completion.usage, completion.payload)
        return completion

    async def open_stream(
        self, request: ChatRequest, headers: Mapping[str, str], exchange: Exchange
    ) -> AsyncIterator[StreamChunk]:
        """The stream, its first chunk already received: until then, failures fall back."""
        return await self._attempts(request, headers, exchange, _first_chunk(exchange))

    async def _attempts(
        self,
        request: ChatRequest,
        headers: Mapping[str, str],
        exchange: Exchange,
        send: Callable[[Provider, UpstreamCall], Awaitable[T]],
    ) -> T:
        runtime = self._runtime
        routing = runtime.settings.routing
        exchange.request = request
        exchange.decision = decision = runtime.router.decide(request, headers)
        if decision.failed_classifiers or decision.policy_errors:
            exchange.trace.decided(decision)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + routing.deadline_seconds
        remaining = self._targets(decision)
        target = remaining[0] if remaining else None
        last_error: RequestFailed | None = None
        while target is not None:
            remaining = [t for t in remaining if t != target]
            breaker = runtime.router.breakers[target.model_id]
            if not within_boundary(target, decision.confidential) or not breaker.allows():
                target = self._first_available(remaining)
                continue
            exchange.target = target
            exchange.attempts += 1
            if exchange.attempts > 1 and exchange.fallback_reason is None:
                exchange.fallback_reason = exchange.last_failure
            trace_headers = exchange.trace.attempt(target, exchange.attempts, exchange.last_failure)
            call = _call(request, target, exchange, trace_headers)
            began = loop.time()
            try:
                async with asyncio.timeout_at(deadline):
                    result = await send(runtime.providers[target.provider], call)
            except TimeoutError:
                breaker.failed()
                deadline_error = UpstreamUnavailable(
                    f"No upstream answered within the deadline of {routing.deadline_seconds:g} s "
                    f"({exchange.attempts} attempts).",
                    code="deadline_exceeded",
                    status_code=504,
                )
                exchange.trace.attempt_failed(deadline_error)
                raise deadline_error from None
            except RequestFailed as exc:
                exchange.trace.attempt_failed(exc)
                exchange.last_failure = error_kind(exc)
                if not retryable(exc):
                    breaker.succeeded()  # the upstream is healthy: the request was refused
                    raise
                breaker.failed()
                last_error = exc
                logger.info(
                    "attempt %d on %s failed: %s", exchange.attempts, target.model_id, exc.message
                )
                if exchange.attempts >= routing.max_attempts:
                    raise
                wait = retry_after(exc)
                if (
                    wait is not None
                    and wait <= routing.max_retry_wait_seconds
                    and loop.time() + wait < deadline
                    and breaker.available()
                ):
                    await asyncio.sleep(wait)
                    continue  # the same target, once its wait is over
                target = self._next(decision, target, exc, remaining, exchange)
                continue
            breaker.succeeded(loop.time() - began)
            return result
        if last_error is not None:
            raise last_error
        raise self._nothing_left(decision)

    def _targets(self, decision: Decision) -> list[Target]:
        """The plan, without targets outside the data boundary, and without duplicates."""
        targets: list[Target] = []
        for target in plan(decision, self._runtime.settings):
            if within_boundary(target, decision.confidential) and target not in targets:
                targets.append(target)
        return targets

    def _first_available(self, remaining: list[Target]) -> Target | None:
        breakers = self._runtime.router.breakers
        return next((t for t in remaining if breakers[t.model_id].available()), None)

    def _next(
        self,
        decision: Decision,
        failed: Target,
        error: RequestFailed,
        remaining: list[Target],
        exchange: Exchange,
    ) -> Target | None:
        """What the `choose_fallback` hook picks; the default rule if a plugin misbehaves."""
        breakers = self._runtime.router.breakers
        available = [t for t in remaining if breakers[t.model_id].available()]
        try:
            choice = self._runtime.plugins.manager.hook.choose_fallback(
                decision=decision,
                failed=failed,
                error=error,
                remaining=available,
                attempt=exchange.attempts,
            )
        except Exception as exc:
            self._runtime.plugins.fail("choose_fallback", "choose_fallback", exc)
            return available[0] if available else None
        if choice == STOP:
            return None
        if not isinstance(choice, Target) or choice.provider not in self._runtime.providers:
            logger.warning("choose_fallback returned %r: not a configured target", choice)
            return available[0] if available else None
        return choice

    def _nothing_left(self, decision: Decision) -> NoTargetAvailable:
        if decision.confidential and not any(
            within_boundary(t, True) for t in plan(decision, self._runtime.settings)
        ):
            return NoTargetAvailable(
                f"This request may only be served on premises ({decision.boundary_reason}), "
                f"and tier {decision.tier!r} has no on-premises model. Nothing was sent.",
                code="no_on_prem_target",
            )
        return NoTargetAvailable(
            "Every model that may serve this request is unavailable (circuit breakers open)"
            + (f" ({decision.boundary_reason})." if decision.confidential else ".")
        )


def _call(
    request: ChatRequest, target: Target, exchange: Exchange, headers: Mapping[str, str]
) -> UpstreamCall:
    body: dict[str, Any] = {**request.body, "model": target.upstream_model}
    if request.stream:
        # Always ask for usage, so cost is known; the extra chunk is hidden from a client
        # that did not ask for it.
        options = request.body.get("stream_options") or {}
        body["stream_options"] = {**options, "include_usage": True}
    return UpstreamCall(body, target, exchange.request_id, headers)


async def _complete(provider: Provider, call: UpstreamCall) -> Completion:
    return await provider.complete(call)


def _first_chunk(
    exchange: Exchange,
) -> Callable[[Provider, UpstreamCall], Awaitable[AsyncIterator[StreamChunk]]]:
    async def send(provider: Provider, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        chunks = provider.stream(call)
        first = await anext(chunks, None)
        if first is None:
            raise UpstreamUnavailable(
                f"Upstream {call.target.provider!r} sent a stream without a single chunk.",
                code="upstream_malformed_response",
            )
        return _observed(first, chunks, exchange)

    return send


async def _observed(
    first: StreamChunk, rest: AsyncIterator[StreamChunk], exchange: Exchange
) -> AsyncIterator[StreamChunk]:
    """Re-attach the first chunk and note the usage as it passes."""
    try:
        model = first.payload.get("model")
        exchange.response_model = model if isinstance(model, str) else None
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
