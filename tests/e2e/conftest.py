from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import openai
import pytest

from sidecar import RequestRecord, hookimpl
from sidecar.plugins import load_plugins
from sidecar.runtime import Runtime, build_runtime
from sidecar.server import uvicorn_config
from sidecar.settings import parse_settings

from ..fake_upstream import FakeUpstream
from ..support import ServerThread, serve_app

API_KEY_ENV = "SIDECAR_TEST_UPSTREAM_KEY"
API_KEY = "sk-upstream-secret-0123456789"
EXPLICIT_MODEL_POLICY = """\
description: A client that names a tier or a model gets it
when: request.model != "auto"
route: {requested: true}
"""


class Recorder:
    """A plugin that keeps every RequestRecord it is given."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    @hookimpl
    def request_finished(self, record: RequestRecord) -> None:
        self.records.append(record)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[RequestRecord]:
        """The records, once `count` have arrived: observers run after the response ends."""
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.records


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[FakeUpstream, ServerThread]]:
    fake = FakeUpstream()
    with serve_app(fake.app) as server:
        yield fake, server


@pytest.fixture
def upstream(upstream_server: tuple[FakeUpstream, ServerThread]) -> FakeUpstream:
    fake, _ = upstream_server
    fake.reset()
    return fake


def sidecar_config(upstream_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "providers": {
            "fake": {
                "kind": "openai",
                "base_url": f"{upstream_url}/v1",
                "api_key_env": API_KEY_ENV,
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
            },
            "local": {"kind": "demo", "on_prem": True},
        },
        "models": {
            "small": {
                "provider": "fake",
                "name": "gpt-4o-mini",
                "price": {"input": 0.15, "output": 0.6},
            },
            "big": {"provider": "fake", "name": "gpt-4o", "price": {"input": 2.5, "output": 10}},
            "loose": {"provider": "fake", "name": "loose-upstream-name"},
            "onprem-demo": {"provider": "local"},
        },
        "tiers": {"light": ["small"], "frontier": ["big", "small"], "onprem": ["onprem-demo"]},
        "routing": {"default_tier": "light"},
        # Tests share this sidecar: failures one test provokes must not open a breaker
        # for the next. Breakers have tests of their own.
        "breaker": {"failure_threshold": 1000, "window": 1000, "min_samples": 1000},
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value}
    return config


@contextlib.contextmanager
def running_sidecar(
    config: dict[str, Any],
    base_dir: Path,
    plugins: tuple[tuple[str, object], ...] = (),
    configure: Callable[[Runtime], None] | None = None,
) -> Iterator[ServerThread]:
    """A sidecar serving `config` in a thread; `configure` may adjust its runtime first."""
    os.environ[API_KEY_ENV] = API_KEY
    policies = base_dir / "policies"
    if "policies" not in config.get("routing", {}) and not policies.exists():
        policies.mkdir()
        (policies / "20-explicit-model.yaml").write_text(EXPLICIT_MODEL_POLICY)
    settings = parse_settings(config, base_dir=base_dir)
    runtime = build_runtime(settings, load_plugins(settings.plugins.disabled, None, plugins))
    if configure is not None:
        configure(runtime)
    config_ = uvicorn_config(runtime, "127.0.0.1", 0, log_level="warning")
    with ServerThread(config_) as server:
        yield server


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def sidecar_server(
    upstream_server: tuple[FakeUpstream, ServerThread],
    recorder: Recorder,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    _, upstream = upstream_server
    config = sidecar_config(upstream.url)
    with running_sidecar(
        config, tmp_path_factory.mktemp("sidecar"), (("recorder", recorder),)
    ) as s:
        yield s


@pytest.fixture
def sidecar(sidecar_server: ServerThread, recorder: Recorder) -> ServerThread:
    recorder.records.clear()
    return sidecar_server


class Server(Protocol):
    url: str
    closers: list[Callable[[], object]]


def sdk(server: Server) -> openai.OpenAI:
    """An SDK client of `server`, closed with it."""
    # max_retries=0: each test sees exactly the upstream's behaviour, not the SDK's retries.
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
    server.closers.append(client.close)
    return client


@pytest.fixture
def client(sidecar: ServerThread) -> Iterator[openai.OpenAI]:
    with sdk(sidecar) as c:
        yield c
