"""Telemetry exported over OTLP to a real receiver, configured only by OTEL_* variables.

The receiver is rotel's collector binary (the `rotel` package), listening for OTLP over
gRPC and HTTP on loopback and printing what it receives to its log.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rotel

from ..support import DEMO_CONFIG
from .conftest import sdk
from .processes import serving, write_config

ROTEL = Path(rotel.__file__).parent / "rotel-agent"
PROMPT = "telemetry-must-not-carry-this-prompt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Receiver:
    def __init__(self, log: Path, grpc_port: int, http_port: int) -> None:
        self.log = log
        self.grpc = f"http://127.0.0.1:{grpc_port}"
        self.http = f"http://127.0.0.1:{http_port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, *needles: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if all(needle in text for needle in needles):
                return text
            time.sleep(0.05)
        missing = [n for n in needles if n not in self.text()]
        raise AssertionError(f"the receiver never got {missing}; its log:\n{self.text()[-3000:]}")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    log = tmp_path_factory.mktemp("rotel") / "received.log"
    grpc_port, http_port = _free_port(), _free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(ROTEL),
                "start",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{grpc_port}",
                "--otlp-http-endpoint",
                f"127.0.0.1:{http_port}",
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log",
                "metrics",
                "--debug-log-verbosity",
                "detailed",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for port in (grpc_port, http_port):
            _wait_listening(port)
        yield Receiver(log, grpc_port, http_port)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port}")


def _env(endpoint: str, protocol: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": f"sidecar-e2e-{protocol.replace('/', '-')}",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_and_metrics_arrive_with_tier_and_cost(
    receiver: Receiver, tmp_path: Path, protocol: str
) -> None:
    endpoint = receiver.http if protocol == "http/protobuf" else receiver.grpc
    config = write_config(tmp_path, DEMO_CONFIG)
    service = _env(endpoint, protocol)["OTEL_SERVICE_NAME"]
    with serving("--config", str(config), env=_env(endpoint, protocol)) as sidecar:
        with sdk(sidecar) as client:
            client.chat.completions.create(
                model="light", messages=[{"role": "user", "content": PROMPT}]
            )
        text = receiver.wait_for(
            f"service.name: Str({service})",
            "Name           : POST /v1/chat/completions",
            "sidecar.tier: Str(light)",
            "sidecar.cost.usd: Double(",
            "sidecar.savings.usd: Double(",
            "gen_ai.client.token.usage",
        )
    assert PROMPT not in text


def test_shutdown_is_bounded_when_the_collector_never_answers(tmp_path: Path) -> None:
    """A collector that accepts connections and never answers: the SDK's defaults would
    hold shutdown ~30 s; `telemetry.export_timeout_seconds` bounds it."""
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(64)  # connections queue in the backlog; nothing is ever read
        port = black_hole.getsockname()[1]
        config = write_config(tmp_path, {**DEMO_CONFIG, "telemetry": {"export_timeout_seconds": 1}})
        env = {**_env(f"http://127.0.0.1:{port}", "http/protobuf"), "OTEL_BSP_SCHEDULE_DELAY": "10"}
        with serving("--config", str(config), env=env) as sidecar:
            with sdk(sidecar) as client:
                for _ in range(3):
                    client.chat.completions.create(
                        model="light", messages=[{"role": "user", "content": "hi"}]
                    )
            began = time.monotonic()
            sidecar.popen.send_signal(signal.SIGTERM)
            sidecar.popen.wait(timeout=30)
            took = time.monotonic() - began
    assert took < 5, f"shutdown took {took:.1f} s"
    assert any("telemetry not flushed" in line for line in sidecar.log), "".join(sidecar.log)
