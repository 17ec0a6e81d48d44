"""Thin HTTP endpoints: read, parse, call the pipeline, encode."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .errors import InvalidRequest, PayloadTooLarge, RequestFailed, error_body, error_json
from .explain import explain
from .ledger import LedgerError, ledger_of
from .pipeline import Exchange, Pipeline
from .provider import Completion, StreamChunk
from .report import DEFAULT_SINCE, parse_since, summarize
from .routing import model_listing
from .runtime import Runtime
from .wire import sse
from .wire.openai import ChatRequest, dumps, parse_chat_request

logger = logging.getLogger("sidecar")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Endpoints:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pipeline = Pipeline(runtime)
        self.started = int(time.time())

    async def chat_completions(self, request: Request) -> Response:
        exchange = Exchange()
        exchange.trace = trace = self.runtime.telemetry.start_request(request.headers)
        finish = BackgroundTask(self._finish, exchange)
        try:
            raw = await _read_body(request, self.runtime.settings.server.max_body_bytes)
            chat = parse_chat_request(raw)
            if trace.captures_content:
                trace.input_messages(chat.body.get("messages"))
            if chat.stream:
                chunks = await self.pipeline.open_stream(chat, request.headers, exchange)
                body = _sse_body(chunks, chat, exchange, self._model_override(chat, exchange))
                return _FinishingStream(body, headers=self._headers(exchange), background=finish)
            completion = await self.pipeline.complete(chat, request.headers, exchange)
            content = _completion_body(completion, self._model_override(chat, exchange))
            return Response(
                content,
                media_type="application/json",
                headers=self._headers(exchange),
                background=finish,
            )
        except RequestFailed as exc:
            exchange.failed(exc)
            return _error_response(exc, self._headers(exchange), finish)
        except Exception:
            logger.exception("request %s failed", exchange.request_id)
            internal = RequestFailed(
                "The sidecar failed to handle this request.", code="internal_error"
            )
            exchange.failed(internal)
            return _error_response(internal, self._headers(exchange), finish)

    async def models(self, request: Request) -> Response:
        return JSONResponse(model_listing(self.runtime.settings, self.started))

    async def health(self, request: Request) -> Response:
        """Alive, and the circuit breaker of every model."""
        return JSONResponse({"status": "ok", "models": self.runtime.router.breakers.describe()})

    async def ready(self, request: Request) -> Response:
        ready = self.runtime.ready and not self.runtime.client.is_closed
        return JSONResponse(
            {"status": "ready" if ready else "starting", "config": str(self.runtime.settings.path)},
            status_code=200 if ready else 503,
        )

    async def plugins(self, request: Request) -> Response:
        return JSONResponse(self.runtime.plugins.describe())

    async def policies(self, request: Request) -> Response:
        return JSONResponse(self.runtime.router.store.describe())

    async def explain(self, request: Request) -> Response:
        """The routing of a chat request body, without calling a provider."""
        try:
            raw = await _read_body(request, self.runtime.settings.server.max_body_bytes)
            chat = parse_chat_request(raw)
            return JSONResponse(explain(self.runtime.router, chat, request.headers))
        except RequestFailed as exc:
            return Response(error_json(exc), exc.status_code, media_type="application/json")

    async def stats(self, request: Request) -> Response:
        """The `sidecar report` summary of the usage ledger, live (`?since=24h`)."""
        ledger = ledger_of(self.runtime.plugins)
        if ledger is None:
            return http_error(
                503,
                "The usage ledger is not running (ledger.enabled is false, or it failed to "
                "open: see /-/plugins), so there are no statistics to serve.",
            )
        try:
            since = parse_since(request.query_params.get("since", DEFAULT_SINCE), time.time())
        except ValueError as exc:
            return http_error(400, f"since: {exc}")
        await asyncio.to_thread(ledger.flush)  # the rows of requests answered until now
        try:
            summary = await asyncio.to_thread(summarize, ledger.path, since)
        except LedgerError as exc:
            return http_error(503, str(exc))
        return JSONResponse({**summary, "ledger_stats": ledger.stats()})

    def _headers(self, exchange: Exchange) -> dict[str, str]:
        headers = {"x-sidecar-request-id": exchange.request_id}
        decision = exchange.decision
        if decision is not None:
            if decision.tier is not None:
                headers["x-sidecar-tier"] = decision.tier
            if decision.policy is not None:
                headers["x-sidecar-policy"] = decision.policy
        if exchange.target is not None:
            headers["x-sidecar-model"] = exchange.target.model_id
        if exchange.attempts:
            headers["x-sidecar-attempts"] = str(exchange.attempts)
        return headers

    def _model_override(self, chat: ChatRequest, exchange: Exchange) -> str | None:
        mode = self.runtime.settings.server.response_model
        if mode == "requested":
            return chat.model
        if mode == "model_id" and exchange.target is not None:
            return exchange.target.model_id
        return None

    async def _finish(self, exchange: Exchange) -> None:
        record = exchange.record(self.runtime.pricing)
        try:
            exchange.trace.finish(record)
        except Exception:  # telemetry never fails a request, nor keeps observers from it
            logger.exception("telemetry of request %s failed", exchange.request_id)
        await self.runtime.plugins.notify("request_finished", record=record)


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    if not size:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")


def _completion_body(completion: Completion, model: str | None) -> bytes:
    if model is None and completion.raw is not None:
        return completion.raw
    payload = completion.payload
    if model is not None:
        payload = {**payload, "model": model}
    return dumps(payload)


def _chunk_body(chunk: StreamChunk, model: str | None) -> bytes:
    if model is None and chunk.raw is not None:
        return sse.encode(chunk.raw)
    payload = chunk.payload if model is None else {**chunk.payload, "model": model}
    return sse.encode(dumps(payload))


async def _sse_body(
    chunks: AsyncIterator[StreamChunk], chat: ChatRequest, exchange: Exchange, model: str | None
) -> AsyncIterator[bytes]:
    trace = exchange.trace if exchange.trace.captures_content else None
    try:
        async for chunk in chunks:
            if trace is not None:
                trace.stream_chunk(chunk.payload)
            if (
                chunk.usage is not None
                and not chunk.payload.get("choices")
                and not chat.include_usage
            ):
                continue  # the usage chunk we asked for on our own account
            yield _chunk_body(chunk, model)
        yield sse.DONE_EVENT
    except RequestFailed as exc:
        # Headers are gone: the failure becomes an error event, which the SDK raises.
        exchange.error_type = exc.error_type
        logger.warning("stream %s broke: %s", exchange.request_id, exc.message)
        yield sse.encode(error_json(exc))


class _FinishingStream(StreamingResponse):
    """An SSE response whose background task runs even when the client went away.

    A client that leaves mid-stream stops the stream, so the upstream stops generating.
    Starlette watches for that with an anyio task group per response, which costs more
    than relaying the stream; here one plain task waits for the disconnect and cancels
    the streaming task.
    """

    media_type = "text/event-stream"

    def __init__(
        self, body: AsyncIterator[bytes], headers: dict[str, str], background: BackgroundTask
    ) -> None:
        super().__init__(body, headers={**headers, **SSE_HEADERS})
        self._finish = background

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            spec = scope.get("asgi", {}).get("spec_version", "2.0")
            if tuple(map(int, spec.split("."))) < (2, 4):
                await self._stream_until_disconnect(receive, send)
                return
            try:  # the server raises OSError on sending to a client that has gone
                await self.stream_response(send)
            except OSError:
                raise ClientDisconnect() from None
        finally:
            await self._finish()

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        streaming = True
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if streaming:
                gone = True
                task.cancel()

        cancelling = task.cancelling()
        watcher = asyncio.create_task(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not gone or task.uncancel() > cancelling:
                raise
        finally:
            streaming = False
            watcher.cancel()


def _error_response(
    exc: RequestFailed, headers: dict[str, Any], finish: BackgroundTask
) -> Response:
    return Response(
        error_json(exc),
        status_code=exc.status_code,
        media_type="application/json",
        headers={**headers, **exc.headers},
        background=finish,
    )


def http_error(status_code: int, detail: str) -> Response:
    error_type = "invalid_request_error" if status_code < 500 else "server_error"
    return JSONResponse(error_body(detail, error_type), status_code=status_code)
