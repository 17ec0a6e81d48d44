"""One test per hook, each through a running sidecar: the hooks reference made executable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import openai
import pytest

from sidecar import (
    Completion,
    ProviderKind,
    ProviderSettings,
    RequestRecord,
    Settings,
    StreamChunk,
    UpstreamCall,
    Usage,
    hookimpl,
)
from sidecar.classifier import Prompt
from sidecar.prices import Price
from sidecar.settings import ModelSettings

from ..fake_upstream import FakeUpstream
from ..support import ServerThread
from .conftest import EXPLICIT_MODEL_POLICY, Recorder, running_sidecar, sdk, sidecar_config

HELLO = [{"role": "user", "content": "hi"}]


class EchoProvider:
    """A provider kind a plugin adds: answers with the prompt reversed."""

    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.prefix = settings.options.get("prefix", "")

    async def complete(self, call: UpstreamCall) -> Completion:
        text = self.prefix + str(call.body["messages"][-1]["content"])[::-1]
        payload = {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": 0,
            "model": call.target.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        }
        return Completion(payload, Usage(1, 1))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def aclose(self) -> None:
        return None


def test_hook_register_providers(tmp_path: Path) -> None:
    class EchoPlugin:
        @hookimpl
        def register_providers(self) -> ProviderKind:
            return ProviderKind("echo", EchoProvider, options=frozenset({"prefix"}))

    config = sidecar_config("http://127.0.0.1:9")
    config["providers"]["mirror"] = {"kind": "echo", "prefix": ">"}
    config["models"]["mirror-1"] = {"provider": "mirror"}
    with running_sidecar(config, tmp_path, (("echo", EchoPlugin()),)) as sidecar:
        answer = sdk(sidecar).chat.completions.create(model="mirror-1", messages=HELLO)
    assert answer.choices[0].message.content == ">ih"


def test_hook_startup_and_shutdown(tmp_path: Path) -> None:
    events: list[str] = []

    class Lifecycle:
        @hookimpl
        async def startup(self, settings: Settings) -> None:
            await asyncio.sleep(0)
            events.append(f"startup {settings.routing.default_tier}")

        @hookimpl
        def shutdown(self) -> None:
            events.append("shutdown")

    config = sidecar_config("http://127.0.0.1:9")
    with running_sidecar(config, tmp_path, (("lifecycle", Lifecycle()),)) as sidecar:
        assert events == ["startup light"]
        assert httpx.get(f"{sidecar.url}/-/ready").status_code == 200
    assert events == ["startup light", "shutdown"]


def test_hook_startup_failure_is_reported_and_the_sidecar_serves(tmp_path: Path) -> None:
    class Failing:
        @hookimpl
        def startup(self) -> None:
            raise RuntimeError("cannot warm cache")

    config = sidecar_config("http://127.0.0.1:9")
    with running_sidecar(config, tmp_path, (("failing", Failing()),)) as sidecar:
        failed = httpx.get(f"{sidecar.url}/-/plugins").json()["failed"]
        answer = sdk(sidecar).chat.completions.create(model="onprem", messages=HELLO)
    assert failed == [
        {"plugin": "failing", "stage": "startup", "error": "RuntimeError: cannot warm cache"}
    ]
    assert answer.choices[0].message.content


def test_hook_request_finished(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread]
) -> None:
    records: list[RequestRecord] = []

    class Observer:
        @hookimpl
        async def request_finished(self, record: RequestRecord) -> None:
            records.append(record)

    class Broken:
        @hookimpl
        def request_finished(self, record: RequestRecord) -> None:
            raise ValueError("observer bug")

    _, upstream = upstream_server
    config = sidecar_config(upstream.url)
    plugins = (("observer", Observer()), ("broken", Broken()))
    with running_sidecar(config, tmp_path, plugins) as sidecar:
        client = sdk(sidecar)
        client.chat.completions.create(
            model="auto", messages=HELLO
        )  # a broken observer fails nothing
        list(client.chat.completions.create(model="frontier", messages=HELLO, stream=True))
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=HELLO)
    plain, streamed, failed = records
    assert (plain.tier, plain.model_id, plain.stream, plain.status) == (
        "light",
        "small",
        False,
        200,
    )
    assert plain.usage == Usage(19, 10, 0)
    assert (streamed.tier, streamed.stream, streamed.usage) == ("frontier", True, Usage(19, 7, 0))
    assert (failed.status, failed.error_type, failed.model_id) == (
        404,
        "invalid_request_error",
        None,
    )
    assert plain.duration_s > 0


def test_hook_register_cel_functions(tmp_path: Path) -> None:
    class Functions:
        @hookimpl
        def register_cel_functions(self) -> dict[str, object]:
            def contains_any(text: str, words: list[str]) -> bool:
                return any(word in text.lower() for word in words)

            return {"contains_any": contains_any}

    config = sidecar_config("http://127.0.0.1:9")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "10-legal.yaml").write_text(
        'when: contains_any(request.text, ["contract", "lawsuit"])\nroute: {tier: onprem}\n'
    )
    (policies / "20-explicit-model.yaml").write_text(EXPLICIT_MODEL_POLICY)
    with running_sidecar(config, tmp_path, (("functions", Functions()),)) as sidecar:
        client = sdk(sidecar)
        legal = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "Review this Contract"}]
        )
        other = client.chat.completions.with_raw_response.create(model="onprem", messages=HELLO)
    assert (legal.headers["x-sidecar-tier"], legal.headers["x-sidecar-policy"]) == (
        "onprem",
        "10-legal",
    )
    assert other.headers["x-sidecar-policy"] == "20-explicit-model"


def test_hook_register_classifiers(tmp_path: Path) -> None:
    class Shouting:
        name = "shouting"
        outputs: ClassVar = {"loud": "bool", "ratio": "double"}

        def classify(self, prompt: Prompt) -> dict[str, object]:
            letters = [c for c in prompt.last_user_text if c.isalpha()]
            ratio = sum(c.isupper() for c in letters) / len(letters) if letters else 0.0
            return {"loud": ratio > 0.8, "ratio": ratio}

    class Broken:
        name = "broken"
        outputs: ClassVar = {"value": "int"}

        def classify(self, prompt: Prompt) -> dict[str, object]:
            raise RuntimeError("classifier bug")

    class Plugin:
        @hookimpl
        def register_classifiers(self) -> list[object]:
            return [Shouting(), Broken()]

    config = sidecar_config("http://127.0.0.1:9")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "10-loud.yaml").write_text("when: signals.shouting.loud\nroute: {tier: onprem}\n")
    (policies / "20-broken.yaml").write_text(
        "when: signals.broken.value > 1\nroute: {tier: onprem}\nconfidential: true\n"
    )
    with running_sidecar(config, tmp_path, (("shouting", Plugin()),)) as sidecar:
        client = sdk(sidecar)
        loud = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "HELLO THERE"}]
        )
        quiet = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hello there"}]
        )
        explained = httpx.post(
            f"{sidecar.url}/-/explain",
            json={"model": "auto", "messages": [{"role": "user", "content": "hello there"}]},
        ).json()
    assert loud.headers["x-sidecar-policy"] == "10-loud"
    # The broken classifier's signal is missing: its confidential policy fails closed.
    assert quiet.headers["x-sidecar-policy"] == "20-broken"
    assert explained["signals"]["shouting"] == {"loud": False, "ratio": 0.0}
    assert explained["failed_classifiers"] == ["broken"]
    assert explained["failed_closed"] is True


def test_hook_model_price(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread]
) -> None:
    asked: list[tuple[str, str]] = []

    class PriceList:
        @hookimpl
        def model_price(self, model: ModelSettings, provider: ProviderSettings) -> Price | None:
            asked.append((model.name, provider.kind))
            return Price(input=1.0, output=2.0) if model.name == "loose-upstream-name" else None

    class Broken:
        @hookimpl
        def model_price(self) -> str:
            return "cheap"

    _, upstream = upstream_server
    recorder = Recorder()
    plugins = (("price-list", PriceList()), ("broken", Broken()), ("recorder", recorder))
    with running_sidecar(sidecar_config(upstream.url), tmp_path, plugins) as sidecar:
        sdk(sidecar).chat.completions.create(model="loose", messages=HELLO)
        (record,) = recorder.wait(1)
        failed = httpx.get(f"{sidecar.url}/-/plugins").json()["failed"]
    # Configured prices are never asked about; the plugin's price is what the request cost.
    assert sorted(asked) == [("loose-upstream-name", "openai"), ("onprem-demo", "demo")]
    assert record.cost_usd == pytest.approx((19 * 1.0 + 10 * 2.0) / 1e6)
    assert {
        "plugin": "broken",
        "stage": "model_price",
        "error": "returned 'cheap', not a Price",
    } in failed
