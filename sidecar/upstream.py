"""The one upstream HTTP client of the process: httpx's API over aiohttp's transport.

Measured on one core, a pass-through on httpx's own pool did ~780 requests/s and
degraded under concurrency; over aiohttp ~3,600. Timeouts are set per request by the
providers (httpx's 5 s default read timeout is far too short for a model).

An `Endpoint` sends on the aiohttp session under the process's client directly. httpx's
per-request layers do nothing a sidecar wants and cost a good part of an upstream call's
CPU: the client's authentication and redirect flows, cookie jar and log line, and on the
way through the transport an `httpx.Request`, an `httpx.Response` and their headers built
and parsed again (~9% of the sidecar's CPU per request under load, py-spy). Given any
other httpx client (a plugin's, a test's `MockTransport`), it sends through that client's
transport, with the same headers, timeouts and errors.

No cookie jar anywhere: a jar shared by every caller would carry one caller's cookies (a
session, a load balancer's affinity) into another's requests.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from typing import Any, Protocol

import aiohttp
import httpx
from httpx_aiohttp.transport import AiohttpTransport

from .errors import UpstreamUnavailable, upstream_status_error
from .settings import ProviderSettings, Timeouts, UpstreamSettings
from .wire import sse
from .wire.openai import loads_object


def create_client(settings: UpstreamSettings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )
    # trust_env=False: a sidecar must not be re-routed by a stray HTTP_PROXY in the pod.
    transport = AiohttpTransport(limits=limits, trust_env=False)

    def session() -> aiohttp.ClientSession:
        # Made on first use, inside the running loop, as the transport's own would be;
        # unlike it, without a cookie jar.
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            keepalive_timeout=settings.keepalive_expiry,
            ssl=transport.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    transport.client = session
    return httpx.AsyncClient(transport=transport, timeout=None, trust_env=False)


TRANSPORT_ERRORS = (TimeoutError, httpx.TransportError, aiohttp.ClientError)
"""What sending or reading may raise below the HTTP status: `transport_failure` says which."""


def transport_failure(
    provider: str, exc: BaseException, waiting_for: str, seconds: float
) -> UpstreamUnavailable:
    """Translate a transport-level failure, once, into the error the client sees.

    httpx-aiohttp maps every aiohttp connection error to `httpx.ConnectTimeout`, a refused
    connection included, so the aiohttp exception it chains is what tells them apart; on
    the direct path the aiohttp exception comes as it is.
    """
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
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
        # The client's defaults (user agent, accepted encodings) under the provider's own,
        # merged once, as httpx.Headers: a request copies them without parsing them again.
        self._headers = httpx.Headers(client.headers)
        self._headers.update(headers)
        # Compression would make upstream proxies buffer a stream; ask for none.
        self._stream_headers = self._headers.copy()
        self._stream_headers["accept-encoding"] = "identity"
        t = settings.timeouts
        transport = _transport_for(client, self._target)
        self._wire: _Wire
        if isinstance(transport, AiohttpTransport):
            self._wire = _AiohttpWire(
                transport, url, self._headers, self._stream_headers, settings.timeouts
            )
        else:
            self._wire = _HttpxWire(
                client, transport, self._target, self._headers, self._stream_headers, t
            )

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"Endpoint({self.url!r})"

    async def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The whole answer of a plain request; raises on failure or an error status.

        `headers` are added to the provider's own (the call's trace context, for one)."""
        name, total = self._settings.name, self._settings.timeouts.total
        try:
            async with asyncio.timeout(total):
                status, content, response_headers = await self._wire.post(body, headers)
        except TRANSPORT_ERRORS as exc:
            raise transport_failure(name, exc, "an answer", total) from None
        if status >= 400:
            raise upstream_status_error(status, content, name, _passed_on(response_headers))
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
        try:
            async with asyncio.timeout(min(timeouts.first_byte, timeouts.total)):
                response = await self._wire.stream(body, headers)
        except TRANSPORT_ERRORS as exc:
            raise transport_failure(name, exc, "the first byte", timeouts.first_byte) from None
        watch = _IdleWatch(loop)
        try:
            if response.status >= 400:
                content = await response.read()
                raise upstream_status_error(
                    response.status, content, name, _passed_on(response.headers)
                )
            decoder = sse.Decoder()
            raw = response.chunks
            while True:
                wait = min(timeouts.idle, deadline - loop.time())
                try:
                    data = await watch.next(raw, wait)
                except TRANSPORT_ERRORS as exc:
                    raise transport_failure(name, exc, "the next chunk", wait) from None
                for event in decoder.feed(data) if data is not None else decoder.flush():
                    yield event
                if data is None:
                    return
        finally:
            watch.stop()
            await response.close()

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


class _Streaming(Protocol):
    """A streamed answer whose status and headers came, its body not yet read."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]

    async def read(self) -> bytes: ...

    async def close(self) -> None: ...


class _Wire(Protocol):
    """How an Endpoint's requests go out: headers merged, timeouts of the transport set."""

    async def post(
        self, body: bytes, headers: Mapping[str, str] | None
    ) -> tuple[int, bytes, Mapping[str, str]]: ...

    async def stream(self, body: bytes, headers: Mapping[str, str] | None) -> _Streaming: ...


def _transport_for(client: httpx.AsyncClient, url: httpx.URL) -> httpx.AsyncBaseTransport | None:
    """The transport `client` would send a request to `url` on (None if it does not say)."""
    transport_for_url = getattr(client, "_transport_for_url", None)
    if transport_for_url is None:
        return None
    transport: httpx.AsyncBaseTransport = transport_for_url(url)
    return transport


class _AiohttpStream:
    __slots__ = ("_response", "chunks", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        # As the bytes arrive: an SSE event must not wait for a buffer to fill.
        self.chunks: AsyncIterator[bytes] = response.content.iter_any()

    async def read(self) -> bytes:
        return await self._response.read()

    async def close(self) -> None:
        # Back to the pool if the body was read to its end; closed otherwise.
        self._response.release()
        await self._response.wait_for_close()


class _AiohttpWire:
    """Straight to the aiohttp session of the process's client (see the module's doc)."""

    def __init__(
        self,
        transport: AiohttpTransport,
        url: str,
        headers: httpx.Headers,
        stream_headers: httpx.Headers,
        timeouts: Timeouts,
    ) -> None:
        self._transport = transport
        self._url = url
        # aiohttp adds the accepted encodings it can decode itself, and decodes them.
        self._headers = {k: v for k, v in headers.items() if k != "accept-encoding"}
        self._stream_headers = dict(stream_headers.items())
        # What httpx-aiohttp would set from the httpx timeouts: the connect timeout, and a
        # bound on each socket read (the whole answer's bound is the caller's).
        self._plain_timeout = aiohttp.ClientTimeout(
            sock_connect=timeouts.connect, sock_read=timeouts.total
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            sock_connect=timeouts.connect, sock_read=max(timeouts.first_byte, timeouts.idle)
        )

    def _session(self) -> aiohttp.ClientSession:
        session = self._transport.client
        if not isinstance(session, aiohttp.ClientSession):  # first use: as the transport does
            session = self._transport.client = self._transport.get_client()
        return session

    def _send(
        self,
        body: bytes,
        base: dict[str, str],
        extra: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[aiohttp.ClientResponse]:
        return self._session().request(
            "POST",
            self._url,
            headers={**base, **extra} if extra else base,
            data=body,
            allow_redirects=False,
            timeout=timeout,
        )

    async def post(
        self, body: bytes, headers: Mapping[str, str] | None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        response = await self._send(body, self._headers, headers, self._plain_timeout)
        try:
            return response.status, await response.read(), response.headers
        finally:
            response.release()

    async def stream(self, body: bytes, headers: Mapping[str, str] | None) -> _Streaming:
        response = await self._send(body, self._stream_headers, headers, self._stream_timeout)
        return _AiohttpStream(response)


class _HttpxStream:
    __slots__ = ("_response", "chunks", "headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        self.chunks: AsyncIterator[bytes] = aiter(stream)

    async def read(self) -> bytes:
        return await self._response.aread()

    async def close(self) -> None:
        await self._response.aclose()


class _HttpxWire:
    """Through an httpx client's transport, skipping the client's own layers; through the
    client's public API if it has no transport lookup."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport | None,
        url: httpx.URL,
        headers: httpx.Headers,
        stream_headers: httpx.Headers,
        timeouts: Timeouts,
    ) -> None:
        self._client = client
        self._transport = transport
        self._url = url
        self._headers = headers
        self._stream_headers = stream_headers
        t = timeouts
        self._plain_timeout = {"timeout": httpx.Timeout(t.total, connect=t.connect).as_dict()}
        self._stream_timeout = {
            "timeout": httpx.Timeout(max(t.first_byte, t.idle), connect=t.connect).as_dict()
        }

    async def _send(
        self,
        body: bytes,
        base: httpx.Headers,
        extra: Mapping[str, str] | None,
        extensions: dict[str, Any],
    ) -> httpx.Response:
        request = httpx.Request(
            "POST", self._url, headers=_with(base, extra), content=body, extensions=extensions
        )
        if self._transport is None:
            return await self._client.send(request, stream=True)
        return await self._transport.handle_async_request(request)

    async def post(
        self, body: bytes, headers: Mapping[str, str] | None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        response = await self._send(body, self._headers, headers, self._plain_timeout)
        return response.status_code, await _body(response), response.headers

    async def stream(self, body: bytes, headers: Mapping[str, str] | None) -> _Streaming:
        response = await self._send(body, self._stream_headers, headers, self._stream_timeout)
        return _HttpxStream(response)


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


def _passed_on(headers: Mapping[str, str]) -> dict[str, str]:
    """`Retry-After`, the one upstream header a client may need. OpenAI and Azure may give
    the wait only in milliseconds (`retry-after-ms`, as the OpenAI SDK honours it): that
    becomes whole seconds, rounded up, so the client and the core read one header."""
    retry_after = headers.get("retry-after")
    if retry_after:
        return {"retry-after": retry_after}
    for name in RETRY_AFTER_MS:
        try:
            milliseconds = float(headers.get(name, ""))
        except ValueError:
            continue
        if math.isfinite(milliseconds) and milliseconds >= 0:
            return {"retry-after": str(math.ceil(milliseconds / 1000))}
    return {}
