"""The one upstream HTTP client of the process: httpx's API over aiohttp's transport.

Measured on one core, a pass-through on httpx's own pool did ~780 requests/s and
degraded under concurrency; over aiohttp ~3,600. Timeouts are set per request by the
providers (httpx's 5 s default read timeout is far too short for a model).

An `Endpoint` hands its requests straight to the client's transport. The client's own
per-request layers (authentication and redirect flows, the cookie jar, a log line per
request) do nothing a sidecar wants, and cost a third or more of an upstream call's CPU;
a cookie jar shared by every caller would even carry one caller's cookies into another's
requests.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

from .errors import UpstreamUnavailable, upstream_status_error
from .settings import ProviderSettings, UpstreamSettings
from .wire import sse
from .wire.openai import loads_object


def create_client(settings: UpstreamSettings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )
    # trust_env=False: a sidecar must not be re-routed by a stray HTTP_PROXY in the pod.
    return HttpxAiohttpClient(limits=limits, timeout=None, trust_env=False)


def transport_failure(
    provider: str, exc: BaseException, waiting_for: str, seconds: float
) -> UpstreamUnavailable:
    """Translate a transport-level failure, once, into the error the client sees.

    httpx-aiohttp maps every aiohttp connection error to `httpx.ConnectTimeout`, a refused
    connection included, so the aiohttp exception it chains is what tells them apart.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return UpstreamUnavailable(
            f"Upstream {provider!r} refused the connection or could not be resolved.",
            code="upstream_connection_error",
        )
    timed_out = isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError)
    if timed_out or (isinstance(exc, httpx.TimeoutException) and cause is None):
        return UpstreamUnavailable(
            f"Upstream {provider!r} did not send {waiting_for} within {seconds:g} s.",
            code="upstream_timeout",
            status_code=504,
        )
    return UpstreamUnavailable(
        f"Upstream {provider!r} broke the connection ({type(cause or exc).__name__}).",
        code="upstream_connection_error",
    )


class Endpoint:
    """One upstream URL taking JSON: the transport half every HTTP provider shares.

    It applies the provider's timeouts (`total` for a plain answer; `first_byte`, `idle`
    and `total` for a stream), and translates transport failures and error statuses once,
    so providers only translate payloads.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        headers: Mapping[str, str],
        settings: ProviderSettings,
    ) -> None:
        self.url = url
        self._target = httpx.URL(url)  # parsed once: parsing costs more than the JSON body
        self._settings = settings
        self._send = _sender(client, self._target)
        # The client's defaults (user agent, accepted encodings) under the provider's own,
        # merged once, as httpx.Headers: a request copies them without parsing them again.
        self._headers = httpx.Headers(client.headers)
        self._headers.update(headers)
        # Compression would make upstream proxies buffer a stream; ask for none.
        self._stream_headers = self._headers.copy()
        self._stream_headers["accept-encoding"] = "identity"
        t = settings.timeouts
        self._plain_timeout = {"timeout": httpx.Timeout(t.total, connect=t.connect).as_dict()}
        self._stream_timeout = {
            "timeout": httpx.Timeout(max(t.first_byte, t.idle), connect=t.connect).as_dict()
        }

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"Endpoint({self.url!r})"

    async def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The whole answer of a plain request; raises on failure or an error status.

        `headers` are added to the provider's own (the call's trace context, for one)."""
        name, total = self._settings.name, self._settings.timeouts.total
        request = httpx.Request(
            "POST",
            self._target,
            headers=_with(self._headers, headers),
            content=body,
            extensions=self._plain_timeout,
        )
        try:
            async with asyncio.timeout(total):
                response = await self._send(request)
                content = await _body(response)
        except (TimeoutError, httpx.TransportError) as exc:
            raise transport_failure(name, exc, "an answer", total) from None
        if response.status_code >= 400:
            raise upstream_status_error(response.status_code, content, name, _passed_on(response))
        return content

    async def events(
        self, body: bytes, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[sse.Event, None]:
        """The server-sent events of a streamed request, until the connection ends.

        Raises before the first event if the upstream refuses or does not answer in time;
        use it under `contextlib.aclosing` so that stopping early releases the connection.
        """
        name, timeouts = self._settings.name, self._settings.timeouts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        request = httpx.Request(
            "POST",
            self._target,
            headers=_with(self._stream_headers, headers),
            content=body,
            extensions=self._stream_timeout,
        )
        try:
            async with asyncio.timeout(min(timeouts.first_byte, timeouts.total)):
                response = await self._send(request)
        except (TimeoutError, httpx.TransportError) as exc:
            raise transport_failure(name, exc, "the first byte", timeouts.first_byte) from None
        watch = _IdleWatch(loop)
        try:
            if response.status_code >= 400:
                content = await response.aread()
                raise upstream_status_error(
                    response.status_code, content, name, _passed_on(response)
                )
            decoder = sse.Decoder()
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            raw = aiter(stream)
            while True:
                wait = min(timeouts.idle, deadline - loop.time())
                try:
                    data = await watch.next(raw, wait)
                except (TimeoutError, httpx.TransportError) as exc:
                    raise transport_failure(name, exc, "the next chunk", wait) from None
                for event in decoder.feed(data) if data is not None else decoder.flush():
                    yield event
                if data is None:
                    return
        finally:
            watch.stop()
            await response.aclose()

    def json(self, raw: bytes) -> dict[str, Any]:
        """A JSON object from the upstream, or the error that says it was not one."""
        try:
            payload = loads_object(raw)
        except ValueError:
            payload = None
        if payload is None:
            raise UpstreamUnavailable(
                f"Upstream {self._settings.name!r} sent a malformed answer (not a JSON object).",
                code="upstream_malformed_response",
            )
        return payload

    def truncated(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"Upstream {self._settings.name!r} ended the stream before the answer was complete.",
            code="upstream_stream_truncated",
        )


Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


def _sender(client: httpx.AsyncClient, url: httpx.URL) -> Send:
    """What sends a request to `url` and returns its response with the body unread."""
    transport_for_url = getattr(client, "_transport_for_url", None)
    if transport_for_url is None:  # a client without httpx's transport lookup: its public API

        async def send(request: httpx.Request) -> httpx.Response:
            return await client.send(request, stream=True)

        return send
    transport: httpx.AsyncBaseTransport = transport_for_url(url)
    return transport.handle_async_request


async def _body(response: httpx.Response) -> bytes:
    """The whole body, read as it came unless it is compressed (httpx's decoding layers
    cost more than the read itself)."""
    if "content-encoding" in response.headers:
        return await response.aread()
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    try:
        return b"".join([chunk async for chunk in stream])
    finally:
        await response.aclose()


def _with(base: httpx.Headers, extra: Mapping[str, str] | None) -> httpx.Headers:
    if not extra:
        return base
    headers = base.copy()
    headers.update(extra)
    return headers


class _IdleWatch:
    """Bounds each wait for a stream's next chunk, with one timer for the whole stream.

    A timer per chunk (`asyncio.timeout`) costs a timer handle and a task lookup each
    time. Here a wait only records when it must end; the timer, when it fires, cancels a
    wait that is over time, or re-arms itself for the wait in progress. The cancellation
    becomes TimeoutError as under `asyncio.timeout`: only if nothing else cancelled the
    task meanwhile.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._waiting: asyncio.Task[Any] | None = None
        self._fired = False

    async def next(self, chunks: AsyncIterator[bytes], seconds: float) -> bytes | None:
        """The next chunk, None at the end; TimeoutError if none came within `seconds`."""
        if seconds <= 0:
            raise TimeoutError
        task = asyncio.current_task()
        assert task is not None
        self._due = due = self._loop.time() + seconds
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._expire)
        cancelling = task.cancelling()
        self._waiting = task
        try:
            return await anext(chunks, None)
        except asyncio.CancelledError:
            if self._fired:
                self._fired = False
                if task.uncancel() <= cancelling:
                    raise TimeoutError from None
            raise
        finally:
            self._waiting = None
            if self._fired:  # expired as the chunk came in: undo our cancellation
                self._fired = False
                task.uncancel()

    def _expire(self) -> None:
        self._timer = None
        task = self._waiting
        if task is None:
            return  # between two waits: the next one arms the timer again
        if self._loop.time() < self._due:
            self._timer = self._loop.call_at(self._due, self._expire)
            return
        self._fired = True
        task.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


RETRY_AFTER_MS = ("retry-after-ms", "x-ms-retry-after-ms")


def _passed_on(response: httpx.Response) -> dict[str, str]:
    """`Retry-After`, the one upstream header a client may need. OpenAI and Azure may give
    the wait only in milliseconds (`retry-after-ms`, as the OpenAI SDK honours it): that
    becomes whole seconds, rounded up, so the client and the core read one header."""
    retry_after = response.headers.get("retry-after")
    if retry_after:
        return {"retry-after": retry_after}
    for name in RETRY_AFTER_MS:
        try:
            milliseconds = float(response.headers.get(name, ""))
        except ValueError:
            continue
        if math.isfinite(milliseconds) and milliseconds >= 0:
            return {"retry-after": str(math.ceil(milliseconds / 1000))}
    return {}
