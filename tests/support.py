"""Test helpers: real uvicorn servers on loopback, the OpenAI schema, fixture paths, an
in-memory metric exporter."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import uvicorn
from jsonschema import Draft202012Validator
from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SPEC = SHARED / "spec"
FIXTURES = SPEC / "fixtures"


# Three tiers on the offline demo provider; `onprem` is on premises. Copy before changing.
DEMO_CONFIG: dict[str, Any] = {
    "providers": {"cloud": {"kind": "demo"}, "local": {"kind": "demo", "on_prem": True}},
    "models": {
        "small": {"provider": "cloud"},
        "big": {"provider": "cloud"},
        "box": {"provider": "local"},
    },
    "tiers": {"light": ["small"], "frontier": ["big"], "onprem": ["box"]},
    "routing": {"default_tier": "light"},
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


@cache
def _openai_schema() -> dict[str, Any]:
    return json.loads((SPEC / "openai" / "openai-chat.schema.json").read_text())


def assert_openai(definition: str, payload: Any) -> None:
    """Validate a payload against a $defs entry of OpenAI's official schema."""
    schema = {**_openai_schema(), "$ref": f"#/$defs/{definition}"}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=str)
    assert not errors, f"{definition}: {errors[0].message} at {list(errors[0].absolute_path)}"


class ServerThread:
    """A real uvicorn server on 127.0.0.1 in a thread, on a socket bound before it starts."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.closers: list[Callable[[], object]] = []
        """Clients of this server, closed when it stops."""

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for close in self.closers:
            close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()
        assert not self.thread.is_alive(), "server did not stop"


def serve_app(app: Any) -> ServerThread:
    return ServerThread(uvicorn.Config(app, log_level="warning", lifespan="on"))


def iter_sse(raw: bytes) -> Iterator[bytes]:
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data: "):
            yield block[6:]


class MemoryMetrics(MetricExporter):
    """A metric exporter that keeps every export; `delta` asks for delta histograms."""

    def __init__(self, delta: bool = False) -> None:
        super().__init__(
            preferred_temporality={Histogram: AggregationTemporality.DELTA} if delta else None
        )
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None
