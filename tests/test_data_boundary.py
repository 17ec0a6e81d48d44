"""Property: whatever fails and whatever a plugin suggests, a confidential request only
ever reaches providers marked `on_prem`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar import (
    Completion,
    ProviderKind,
    ProviderSettings,
    RequestFailed,
    StreamChunk,
    Target,
    UpstreamCall,
    UpstreamStatusError,
    UpstreamUnavailable,
    Usage,
    hookimpl,
)
from sidecar.pipeline import Exchange, Pipeline
from sidecar.plugins import load_plugins
from sidecar.runtime import build_runtime
from sidecar.settings import parse_settings
from sidecar.wire.openai import parse_chat_request

FAULTS = ["ok", "500", "429", "529", "refused", "timeout", "400"]
MODELS = ["g1", "g2", "c1", "c2"]


class World:
    """What the fake providers do, and whom they were asked."""

    def __init__(self) -> None:
        self.faults: list[str] = []
        self.called: list[tuple[str, bool]] = []
        self.suggestions: list[str] = []


WORLD = World()


class FakeProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings

    async def complete(self, call: UpstreamCall) -> Completion:
        WORLD.called.append((call.target.model_id, self.settings.on_prem))
        fault = WORLD.faults.pop(0) if WORLD.faults else "ok"
        if fault == "refused":
            raise UpstreamUnavailable("refused", code="upstream_connection_error")
        if fault == "timeout":
            raise UpstreamUnavailable("slow", code="upstream_timeout", status_code=504)
        if fault != "ok":
            raise UpstreamStatusError("no", status_code=int(fault), error_type="server_error")
        return Completion({"choices": []}, Usage(1, 1))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def aclose(self) -> None:
        return None


class Plugin:
    @hookimpl
    def register_providers(self) -> ProviderKind:
        return ProviderKind("fake", FakeProvider)

    @hookimpl(tryfirst=True)
    def choose_fallback(self, remaining: list[Target]) -> Target | str | None:
        """An adversarial plugin: suggests cloud targets, stops, or defers."""
        move = WORLD.suggestions.pop(0) if WORLD.suggestions else "defer"
        if move == "stop":
            return "stop"
        if move in MODELS:
            on_prem = move.startswith("g")
            provider = {"g1": "gpu1", "g2": "gpu2", "c1": "cloud1", "c2": "cloud2"}[move]
            return Target(move, provider, move, None, on_prem)
        return None


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("boundary")
    (base / "policies").mkdir()
    (base / "policies" / "10-secret.yaml").write_text(
        "when: request.user == 'secret'\nroute: {tier: onprem}\n"
        "fallback: [mid, frontier]\nconfidential: true\n"
    )
    config: dict[str, Any] = {
        "providers": {
            "gpu1": {"kind": "fake", "on_prem": True},
            "gpu2": {"kind": "fake", "on_prem": True},
            "cloud1": {"kind": "fake"},
            "cloud2": {"kind": "fake"},
        },
        "models": {
            "g1": {"provider": "gpu1"},
            "g2": {"provider": "gpu2"},
            "c1": {"provider": "cloud1"},
            "c2": {"provider": "cloud2"},
        },
        "tiers": {"onprem": ["g1", "g2"], "mid": ["c1", "g2"], "frontier": ["c2"]},
        "routing": {"default_tier": "mid", "max_attempts": 6, "max_retry_wait_seconds": 0},
        "breaker": {"failure_threshold": 2, "cooldown_seconds": 0},
    }
    settings_ = parse_settings(config, base_dir=base)
    return Pipeline(build_runtime(settings_, load_plugins(extra=[("adversary", Plugin())])))


def request(user: str) -> Any:
    body = {"model": "auto", "user": user, "messages": [{"role": "user", "content": "hi"}]}
    return parse_chat_request(json.dumps(body).encode())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    faults=st.lists(st.sampled_from(FAULTS), max_size=12),
    suggestions=st.lists(st.sampled_from([*MODELS, "stop", "defer"]), max_size=6),
    warmup=st.lists(st.sampled_from(FAULTS), max_size=6),
)
def test_a_confidential_request_never_reaches_a_cloud_provider(
    pipeline: Pipeline, faults: list[str], suggestions: list[str], warmup: list[str]
) -> None:
    async def run() -> None:
        # Put the breakers in some state with ordinary traffic first.
        WORLD.faults = list(warmup)
        WORLD.suggestions = []
        for _ in range(len(warmup)):
            with contextlib.suppress(RequestFailed):
                await pipeline.complete(request("anyone"), {}, Exchange())
        WORLD.faults, WORLD.suggestions, WORLD.called = list(faults), list(suggestions), []
        with contextlib.suppress(RequestFailed):
            await pipeline.complete(request("secret"), {}, Exchange())

    asyncio.run(run())
    assert all(on_prem for _, on_prem in WORLD.called), WORLD.called
