"""The baseline: a bare pass-through proxy with the sidecar's server and client stacks.

    python bench/passthrough.py --upstream http://127.0.0.1:8080/v1 --port 8788 [--client C]

Forwards POST /v1/chat/completions to `{upstream}/chat/completions`; an SSE answer is
streamed back chunk by chunk as it arrives, any other answer is passed on whole. Same
stack as the sidecar: Starlette on uvicorn (uvloop, httptools, one worker, no access
log) and, by default (`--client aiohttp`), a request straight to an aiohttp session with
the sidecar's default pool limits, as the sidecar's `Endpoint` sends. `--client httpx`
sends through httpx's `AsyncClient` over aiohttp's transport instead, the ordinary way to
use that pairing, whose per-request layers cost more. No parsing, routing or accounting:
what the sidecar costs on top of this is the price of what it does.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import httpx
import uvicorn
from httpx_aiohttp import HttpxAiohttpClient
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def create_app(upstream: str, client: str = "aiohttp") -> Starlette:
    url = upstream.rstrip("/") + "/chat/completions"
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    if client == "httpx":
        return _httpx_app(url, headers)
    session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        yield
        await session.close()

    async def chat_completions(request: Request) -> Response:
        assert session is not None
        body = await request.body()
        response = await session.request(
            "POST", url, data=body, headers=headers, allow_redirects=False
        )
        media_type = response.headers.get("content-type", "")
        if not media_type.startswith("text/event-stream"):  # a whole JSON answer
            content = await response.read()
            response.release()
            return Response(content, response.status, media_type=media_type)
        return StreamingResponse(
            response.content.iter_any(),
            status_code=response.status,
            media_type=media_type,
            background=BackgroundTask(response.release),
        )

    routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def _httpx_app(url: str, headers: dict[str, str]) -> Starlette:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=60)
    client = HttpxAiohttpClient(limits=limits, timeout=None, trust_env=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def chat_completions(request: Request) -> Response:
        body = await request.body()
        upstream_request = client.build_request("POST", url, content=body, headers=headers)
        response = await client.send(upstream_request, stream=True)
        media_type = response.headers.get("content-type", "")
        if not media_type.startswith("text/event-stream"):  # a whole JSON answer
            content = await response.aread()
            await response.aclose()
            return Response(content, response.status_code, media_type=media_type)
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            media_type=media_type,
            background=BackgroundTask(response.aclose),
        )

    routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="API root, e.g. http://host:port/v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument(
        "--client",
        choices=("aiohttp", "httpx"),
        default="aiohttp",
        help="send on an aiohttp session directly (as the sidecar does), or through httpx",
    )
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.upstream, args.client),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
