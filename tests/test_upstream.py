"""The Endpoint every HTTP provider shares: headers, cookies and timeouts, on MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from sidecar.errors import UpstreamUnavailable
from sidecar.settings import ProviderSettings, Timeouts
from sidecar.upstream import Endpoint
from sidecar.wire import sse

URL = "https://upstream.test/v1/chat/completions"
Handler = Callable[[httpx.Request], httpx.Response]


def run(
    handler: Handler,
    action: Callable[[Endpoint], Awaitable[Any]],
    headers: dict[str, str] | None = None,
    timeouts: Timeouts | None = None,
) -> Any:
    settings = ProviderSettings(name="up", kind="openai", timeouts=timeouts or Timeouts())

    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            endpoint = Endpoint(client, URL, headers or {"accept": "application/json"}, settings)
            return await action(endpoint)

    return asyncio.run(main())


def test_requests_carry_the_clients_defaults_under_the_providers_and_the_calls_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"{}")

    async def action(endpoint: Endpoint) -> None:
        await endpoint.post(b"{}", {"Traceparent": "00-abc-def-01", "Accept": "text/plain"})
        await endpoint.post(b"{}")

    run(handler, action, headers={"Accept": "application/json", "authorization": "Bearer k"})
    first, second = seen
    assert first.headers.get_list("accept") == ["text/plain"]  # one header, the call's
    assert first.headers["traceparent"] == "00-abc-def-01"
    assert first.headers["user-agent"].startswith("python-httpx/")
    assert first.headers["content-length"] == "2"
    assert second.headers.get_list("accept") == ["application/json"]
    assert second.headers["authorization"] == "Bearer k"
    assert "traceparent" not in second.headers


def test_cookies_an_upstream_sets_are_not_sent_on_later_requests() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        cookie = {"set-cookie": "session=caller-a; Path=/"}
        return httpx.Response(200, headers=cookie, content=b"{}")

    async def action(endpoint: Endpoint) -> None:
        await endpoint.post(b"{}")
        await endpoint.post(b"{}")

    run(handler, action)
    assert "cookie" not in seen[1].headers


def test_a_compressed_answer_is_decoded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = gzip.compress(b'{"ok": true}')
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=body)

    assert run(handler, lambda endpoint: endpoint.post(b"{}")) == b'{"ok": true}'


def test_streams_ask_for_no_compression() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"data: {}\n\ndata: [DONE]\n\n")

    async def action(endpoint: Endpoint) -> list[sse.Event]:
        return [event async for event in endpoint.events(b"{}")]

    assert [e.data for e in run(handler, action)] == [b"{}", b"[DONE]"]
    assert seen[0].headers["accept-encoding"] == "identity"


async def _paced(gaps: list[float]) -> AsyncIterator[bytes]:
    for gap in gaps:
        await asyncio.sleep(gap)
        yield b"data: {}\n\n"


def test_the_idle_timeout_counts_from_the_latest_chunk() -> None:
    """Six chunks 0.15 s apart take longer than the idle timeout, and none is late."""
    timeouts = Timeouts(first_byte=1, idle=0.5, total=5)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_paced([0.15] * 6))

    async def action(endpoint: Endpoint) -> int:
        return len([event async for event in endpoint.events(b"{}")])

    assert run(handler, action, timeouts=timeouts) == 6


def test_a_stall_after_some_chunks_times_out() -> None:
    timeouts = Timeouts(first_byte=1, idle=0.3, total=5)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_paced([0.01, 0.01, 0.05, 10.0]))

    async def action(endpoint: Endpoint) -> list[sse.Event]:
        received = []
        with pytest.raises(UpstreamUnavailable, match=r"the next chunk within 0\.3 s") as caught:
            async for event in endpoint.events(b"{}"):
                received.append(event)
        assert caught.value.code == "upstream_timeout"
        return received

    assert len(run(handler, action, timeouts=timeouts)) == 3


def test_the_total_deadline_cuts_a_steady_stream() -> None:
    timeouts = Timeouts(first_byte=1, idle=1, total=0.3)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_paced([0.1] * 10))

    async def action(endpoint: Endpoint) -> None:
        with pytest.raises(UpstreamUnavailable, match="the next chunk") as caught:
            async for _ in endpoint.events(b"{}"):
                pass
        assert caught.value.code == "upstream_timeout"

    run(handler, action, timeouts=timeouts)


def test_cancelling_the_reader_is_a_cancellation_not_a_timeout() -> None:
    timeouts = Timeouts(first_byte=1, idle=0.05, total=5)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_paced([0.0, 10.0]))

    async def action(endpoint: Endpoint) -> None:
        first = asyncio.Event()

        async def read() -> None:
            async with contextlib.aclosing(endpoint.events(b"{}")) as events:
                async for _ in events:
                    first.set()

        task = asyncio.create_task(read())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)  # the idle timer, had it survived, would fire now

    run(handler, action, timeouts=timeouts)
