"""Run the app under uvicorn: uvloop, httptools, one worker, graceful shutdown."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .runtime import Runtime


def uvicorn_config(
    runtime: Runtime, host: str, port: int, *, log_level: str = "info", access_log: bool = False
) -> uvicorn.Config:
    server = runtime.settings.server
    return uvicorn.Config(
        create_app(runtime),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        timeout_keep_alive=int(server.keepalive_seconds),
        # After SIGTERM, in-flight streams may finish within this bound; then they are cut.
        timeout_graceful_shutdown=int(server.shutdown_grace_seconds),
        server_header=False,
    )


def serve(
    runtime: Runtime, host: str, port: int, *, log_level: str = "info", access_log: bool = False
) -> None:
    uvicorn.Server(
        uvicorn_config(runtime, host, port, log_level=log_level, access_log=access_log)
    ).run()
