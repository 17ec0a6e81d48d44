"""create_app(runtime) -> the Starlette application; its lifespan runs the plugins' hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .routes import Endpoints, http_error
from .runtime import Runtime

logger = logging.getLogger("sidecar")


def create_app(runtime: Runtime) -> Starlette:
    endpoints = Endpoints(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop_watching = asyncio.Event()
        watcher = asyncio.create_task(runtime.router.store.watch(stop_watching))
        await runtime.plugins.notify("startup", settings=runtime.settings)
        runtime.ready = True
        try:
            yield
        finally:
            runtime.ready = False
            stop_watching.set()
            await watcher
            await runtime.plugins.notify("shutdown", settings=runtime.settings)
            await runtime.telemetry.shutdown()
            for provider in runtime.providers.values():
                try:
                    await provider.aclose()
                except Exception:
                    logger.exception("closing provider %s failed", provider.settings.name)
            await runtime.client.aclose()

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return http_error(exc.status_code, exc.detail)

    routes = [
        Route("/v1/chat/completions", endpoints.chat_completions, methods=["POST"]),
        Route("/v1/models", endpoints.models, methods=["GET"]),
        Route("/-/health", endpoints.health, methods=["GET"]),
        Route("/-/ready", endpoints.ready, methods=["GET"]),
        Route("/-/plugins", endpoints.plugins, methods=["GET"]),
        Route("/-/policies", endpoints.policies, methods=["GET"]),
        Route("/-/explain", endpoints.explain, methods=["POST"]),
        Route("/-/stats", endpoints.stats, methods=["GET"]),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: on_http_error}
    )
