"""The baseline: a bare pass-through proxy with the sidecar's server and client stacks.

    python bench/passthrough.py --upstream http://127.0.0.1:8080/v1 --port 8788

Forwards POST /v1/chat/completions to `{upstream}/chat/completions`; an SSE answer is
streamed back chunk by chunk as it arrives, any other answer is passed on whole. Same
stack as the sidecar: Starlette on uvicorn (uvloop, httptools, one worker, no access
log) and httpx's API over aiohttp's transport, with the sidecar's default pool limits.
No parsing, routing or accounting: what the sidecar costs on top of this is the price
of what it does.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from httpx_aiohttp import HttpxAiohttpClient
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def create_app(upstream: str) -> Starlette:
    url = upstream.rstrip("/") + "/chat/completions"
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
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
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.upstream),
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
