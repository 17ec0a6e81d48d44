"""The process's upstream client (`create_client`) and an Endpoint on it, over real
sockets: a uvicorn fake upstream on 127.0.0.1, aiohttp underneath, no mock anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from sidecar.errors import UpstreamStatusError, UpstreamUnavailable
from sidecar.settings import ProviderSettings, Timeouts, UpstreamSettings
from sidecar.upstream import Endpoint, create_client
from sidecar.wire import sse

from .fake_upstream import FakeUpstream, Reply, sse_reply
from .support import ServerThread, serve_app

Action = Callable[[Endpoint], Awaitable[Any]]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeUpstream, ServerThread]]:
    upstream = FakeUpstream()
    with serve_app(upstream.app) as server:
        yield upstream, server


@pytest.fixture
def upstream(served: tuple[FakeUpstream, ServerThread]) -> Iterator[FakeUpstream]:
    served[0].reset()
    yield served[0]
    served[0].reset()


@pytest.fixture
def port(served: tuple[FakeUpstream, ServerThread]) -> int:
    return served[1].port


def run(
    port: int,
    action: Action,
    *,
    host: str = "127.0.0.1",
    timeouts: Timeouts | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    settings = ProviderSettings(name="up", kind="openai", timeouts=timeouts or Timeouts())
    url = f"http://{host}:{port}/v1/chat/completions"

    async def main() -> Any:
        async with create_client(UpstreamSettings()) as client:
            provider_headers = headers or {"content-type": "application/json"}
            return await action(Endpoint(client, url, provider_headers, settings))

    return asyncio.run(main())


BODY = json.dumps({"model": "m", "messages": []}).encode()
STREAM_BODY = json.dumps({"model": "m", "messages": [], "stream": True}).encode()


async def _events(endpoint: Endpoint, body: bytes = STREAM_BODY) -> list[sse.Event]:
    async with contextlib.aclosing(endpoint.events(body)) as events:
        return [event async for event in events]


def test_requests_carry_the_providers_and_the_calls_headers(
    upstream: FakeUpstream, port: int
) -> None:
    async def action(endpoint: Endpoint) -> None:
        await endpoint.post(BODY, {"traceparent": "00-abc-def-01", "Accept": "text/plain"})
        await endpoint.post(BODY)

    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    run(port, action, headers=headers)
    first, second = upstream.calls
    assert first.headers["accept"] == "text/plain"  # one header, the call's
    assert first.headers["traceparent"] == "00-abc-def-01"
    assert first.headers["user-agent"].startswith("python-httpx/")
    assert first.headers["content-length"] == str(len(BODY))
    assert second.headers["accept"] == "*/*"
    assert second.headers["authorization"] == "Bearer k"
    assert "traceparent" not in second.headers
    assert first.body == second.body == {"model": "m", "messages": []}


def test_cookies_an_upstream_sets_are_not_sent_on_later_requests(
    upstream: FakeUpstream, port: int
) -> None:
    # By host name: a cookie jar keeps no cookies of a bare IP address.
    cookie = {"set-cookie": "session=caller-a; Path=/"}
    upstream.queue(Reply(body=b"{}", headers=cookie), Reply(body=b"{}", headers=cookie))

    async def action(endpoint: Endpoint) -> None:
        await endpoint.post(BODY)
        await endpoint.post(BODY)

    run(port, action, host="localhost")
    assert "cookie" not in upstream.calls[1].headers


def test_a_compressed_answer_is_decoded(upstream: FakeUpstream, port: int) -> None:
    body = gzip.compress(b'{"ok": true}')
    upstream.queue(Reply(body=body, headers={"content-encoding": "gzip"}))

    async def action(endpoint: Endpoint) -> bytes:
        return await endpoint.post(BODY)

    assert run(port, action) == b'{"ok": true}'
    assert "gzip" in upstream.calls[0].headers["accept-encoding"]


def test_a_stream_asks_for_no_compression_and_yields_every_event(
    upstream: FakeUpstream, port: int
) -> None:
    raw = b"".join(b'data: {"n": %d}\n\n' % n for n in range(5)) + b"data: [DONE]\n\n"
    upstream.queue(sse_reply(raw, delay=0.01))
    events = run(port, _events)
    assert [event.data for event in events] == [*(b'{"n": %d}' % n for n in range(5)), b"[DONE]"]
    assert upstream.calls[0].headers["accept-encoding"] == "identity"


def test_an_error_status_is_passed_on_with_its_wait(upstream: FakeUpstream, port: int) -> None:
    error = {"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limited"}}
    upstream.queue(
        Reply(429, json.dumps(error).encode(), {"retry-after-ms": "1500"}),
        Reply(503, b"busy", {"retry-after": "4"}, content_type="text/plain"),
    )

    async def action(endpoint: Endpoint) -> tuple[Exception, Exception]:
        with pytest.raises(UpstreamStatusError) as plain:
            await endpoint.post(BODY)
        with pytest.raises(UpstreamStatusError) as streamed:
            await _events(endpoint)
        return plain.value, streamed.value

    plain, streamed = run(port, action)
    assert isinstance(plain, UpstreamStatusError)
    assert (plain.status_code, plain.message, plain.code) == (429, "slow down", "rate_limited")
    assert plain.headers["retry-after"] == "2"
    assert isinstance(streamed, UpstreamStatusError)
    assert (streamed.status_code, streamed.message) == (503, "busy")
    assert streamed.headers["retry-after"] == "4"


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    async def action(endpoint: Endpoint) -> tuple[Exception, Exception]:
        with pytest.raises(UpstreamUnavailable) as plain:
            await endpoint.post(BODY)
        with pytest.raises(UpstreamUnavailable) as streamed:
            await _events(endpoint)
        return plain.value, streamed.value

    for error in run(closed, action):
        assert isinstance(error, UpstreamUnavailable)
        assert error.code == "upstream_connection_error"
        assert "refused the connection" in error.message


def test_an_answer_late_past_the_total_is_a_timeout(upstream: FakeUpstream, port: int) -> None:
    upstream.queue(Reply(body=b"{}", wait=1.0))

    async def action(endpoint: Endpoint) -> Exception:
        with pytest.raises(UpstreamUnavailable) as raised:
            await endpoint.post(BODY)
        return raised.value

    error = run(port, action, timeouts=Timeouts(total=0.2))
    assert isinstance(error, UpstreamUnavailable)
    assert (error.code, error.status_code) == ("upstream_timeout", 504)
    assert "did not send an answer within 0.2 s" in error.message


def test_a_stream_that_stalls_times_out_and_one_that_breaks_is_an_error(
    upstream: FakeUpstream, port: int
) -> None:
    chunks = [b'data: {"n": %d}\n\n' % n for n in range(4)]
    upstream.queue(
        Reply(chunks=chunks, delay=1.0, content_type="text/event-stream"),
        Reply(chunks=chunks, reset_after=2, content_type="text/event-stream"),
    )

    async def action(endpoint: Endpoint) -> list[tuple[int, Exception]]:
        failures = []
        for _ in range(2):
            seen = 0
            with pytest.raises(UpstreamUnavailable) as raised:
                async with contextlib.aclosing(endpoint.events(STREAM_BODY)) as events:
                    async for _event in events:
                        seen += 1
            failures.append((seen, raised.value))
        return failures

    (stalled_after, stalled), (broken_after, broken) = run(
        port, action, timeouts=Timeouts(idle=0.2)
    )
    assert stalled_after == 1
    assert isinstance(stalled, UpstreamUnavailable)
    assert stalled.code == "upstream_timeout"
    assert "did not send the next chunk within 0.2 s" in stalled.message
    assert broken_after == 2
    assert isinstance(broken, UpstreamUnavailable)
    assert broken.code in ("upstream_connection_error", "upstream_stream_truncated")


def test_a_stream_left_early_frees_its_connection(upstream: FakeUpstream, port: int) -> None:
    chunks = [b'data: {"n": %d}\n\n' % n for n in range(50)]
    for _ in range(3):
        upstream.queue(Reply(chunks=chunks, delay=0.01, content_type="text/event-stream"))

    async def action(endpoint: Endpoint) -> bytes:
        for _ in range(3):
            async with contextlib.aclosing(endpoint.events(STREAM_BODY)) as events:
                async for _event in events:
                    break
        # The pool still serves: a plain request after three abandoned streams.
        return await endpoint.post(BODY)

    assert json.loads(run(port, action))["object"] == "chat.completion"
