"""Run the app under uvicorn: uvloop, httptools, one worker, graceful shutdown."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .runtime import Runtime


def serve(runtime: Runtime, host: str, port: int, *, log_level: str = "info", access_log: bool = False) -> None:
    server = runtime.settings.server
    config = uvicorn.Config(
        create_app(runtime),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        timeout_keep_alive=int(server.keepalive_seconds),
        # In-flight streams may finish within this bound after SIGTERM; then they are cut.
        timeout_graceful_shutdown=int(server.shutdown_grace_seconds),
        server_header=False,
    )
    uvicorn.Server(config).run()
