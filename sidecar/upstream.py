"""The one upstream HTTP client of the process: httpx's API over aiohttp's transport.

Measured on one core, a pass-through on httpx's own pool did ~780 requests/s and
degraded under concurrency; over aiohttp ~3,600. Timeouts are set per request by the
providers (httpx's 5 s default read timeout is far too short for a model).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

from .errors import UpstreamUnavailable, upstream_status_error
from .settings import ProviderSettings, UpstreamSettings
from .wire import sse


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
        self._client = client
        self._settings = settings
        self._headers = dict(headers)
        # Compression would make upstream proxies buffer a stream; ask for none.
        self._stream_headers = {**headers, "accept-encoding": "identity"}
        t = settings.timeouts
        self._plain_timeout = httpx.Timeout(t.total, connect=t.connect)
        self._stream_timeout = httpx.Timeout(max(t.first_byte, t.idle), connect=t.connect)

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"Endpoint({self.url!r})"

    async def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The whole answer of a plain request; raises on failure or an error status.

        `headers` are added to the provider's own (the call's trace context, for one)."""
        name, total = self._settings.name, self._settings.timeouts.total
        sent = {**self._headers, **headers} if headers else self._headers
        try:
            async with asyncio.timeout(total):
                response = await self._client.post(
                    self.url, content=body, headers=sent, timeout=self._plain_timeout
                )
        except (TimeoutError, httpx.TransportError) as exc:
            raise transport_failure(name, exc, "an answer", total) from None
        if response.status_code >= 400:
            raise upstream_status_error(
                response.status_code, response.content, name, _passed_on(response)
            )
        return response.content

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
        request = self._client.build_request(
            "POST",
            self.url,
            content=body,
            headers={**self._stream_headers, **headers} if headers else self._stream_headers,
            timeout=self._stream_timeout,
        )
        try:
            async with asyncio.timeout(min(timeouts.first_byte, timeouts.total)):
                response = await self._client.send(request, stream=True)
        except (TimeoutError, httpx.TransportError) as exc:
            raise transport_failure(name, exc, "the first byte", timeouts.first_byte) from None
        try:
            if response.status_code >= 400:
                content = await response.aread()
                raise upstream_status_error(
                    response.status_code, content, name, _passed_on(response)
                )
            decoder = sse.Decoder()
            raw = response.aiter_raw()
            while True:
                wait = min(timeouts.idle, deadline - loop.time())
                try:
                    async with asyncio.timeout(wait):
                        data = await anext(raw, None)
                except (TimeoutError, httpx.TransportError) as exc:
                    raise transport_failure(name, exc, "the next chunk", wait) from None
                for event in decoder.feed(data) if data is not None else decoder.flush():
                    yield event
                if data is None:
                    return
        finally:
            await response.aclose()

    def json(self, raw: bytes) -> dict[str, Any]:
        """A JSON object from the upstream, or the error that says it was not one."""
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
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
