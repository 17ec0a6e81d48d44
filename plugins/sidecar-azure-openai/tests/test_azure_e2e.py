"""End to end: the official OpenAI SDK -> a real sidecar -> a fake Azure OpenAI resource.

The sidecar loads its plugins as `sidecar serve` does (built-ins, then entry points), so
these tests pass only when the installed package's entry point brings in `azure_openai`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sidecar_azure_openai
import yaml
from fake_azure import (
    API_KEY,
    CONTENT_FILTER_ERROR,
    FakeAzure,
    Reply,
    ServerThread,
    rate_limited,
    serve,
    stream_events,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from sidecar.plugins import load_plugins
from sidecar.runtime import build_runtime
from sidecar.server import uvicorn_config
from sidecar.settings import parse_settings

KEY_ENV = "SIDECAR_AZURE_TEST_KEY"
PROD, BACKUP = "prod-gpt-4o", "backup-gpt-4o"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
EXPLICIT_MODEL_POLICY = """\
description: A client that names a tier or a model gets it
when: request.model != "auto"
route: {requested: true}
"""


def sidecar_config(azure_url: str) -> dict[str, Any]:
    azure = {
        "kind": "azure_openai",
        "base_url": azure_url,
        "api_key_env": KEY_ENV,
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
    }
    return {
        "providers": {"azure": azure, "azure-v1": {**azure, "api_version": "v1"}},
        "models": {
            "gpt-4o": {"provider": "azure", "name": PROD},
            "gpt-4o-backup": {"provider": "azure", "name": BACKUP},
            "gpt-4o-v1": {"provider": "azure-v1", "name": PROD},
        },
        "tiers": {"frontier": ["gpt-4o", "gpt-4o-backup"]},
        "routing": {"default_tier": "frontier"},
        # The tests share one sidecar: failures one provokes must not open a breaker.
        "breaker": {"failure_threshold": 1000, "window": 1000, "min_samples": 1000},
        "ledger": {"enabled": False},
    }


@contextlib.contextmanager
def running_sidecar(config: dict[str, Any], base_dir: Path) -> Iterator[ServerThread]:
    """A sidecar whose plugins are found as `sidecar serve` finds them: no plugin passed in."""
    policies = base_dir / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "20-explicit-model.yaml").write_text(EXPLICIT_MODEL_POLICY)
    settings = parse_settings(config, base_dir=base_dir)
    runtime = build_runtime(settings, load_plugins(settings.plugins.disabled))
    with ServerThread(uvicorn_config(runtime, "127.0.0.1", 0, log_level="warning")) as server:
        yield server


@pytest.fixture(scope="session")
def azure_server() -> Iterator[tuple[FakeAzure, ServerThread]]:
    fake = FakeAzure()
    with serve(fake.app) as server:
        yield fake, server


@pytest.fixture
def azure(azure_server: tuple[FakeAzure, ServerThread]) -> FakeAzure:
    fake, _ = azure_server
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def sidecar(
    azure_server: tuple[FakeAzure, ServerThread], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    _, server = azure_server
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV, API_KEY)
        with running_sidecar(sidecar_config(server.url), tmp_path_factory.mktemp("sidecar")) as s:
            yield s


@pytest.fixture
def client(sidecar: ServerThread) -> Iterator[openai.OpenAI]:
    # max_retries=0: each test sees the sidecar's behaviour, not the SDK's retries.
    with openai.OpenAI(base_url=f"{sidecar.url}/v1", api_key="sk-client", max_retries=0) as c:
        yield c


def test_the_plugin_is_loaded_through_its_entry_point(sidecar: ServerThread) -> None:
    described = httpx.get(f"{sidecar.url}/-/plugins").json()
    plugin = next(p for p in described["plugins"] if p["name"] == "azure_openai")
    assert plugin["source"] == "entry point sidecar_azure_openai"
    assert plugin["version"] == sidecar_azure_openai.__version__
    assert plugin["hooks"] == ["register_providers"]
    assert described["failed"] == []


def test_a_plain_answer(azure: FakeAzure, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    answer = raw.parse()
    assert answer.choices[0].message.content == "Hello from Azure."
    assert answer.usage is not None
    assert answer.usage.total_tokens == 16
    ChatCompletion.model_validate(json.loads(raw.content))
    assert raw.headers["x-sidecar-model"] == "gpt-4o"
    [call] = azure.calls
    assert call.path == f"/openai/deployments/{PROD}/chat/completions"
    assert call.api_version == sidecar_azure_openai.DEFAULT_API_VERSION
    assert call.headers["api-key"] == API_KEY
    assert "authorization" not in call.headers  # the client's own key never goes upstream
    assert call.body["messages"] == HELLO


def test_a_stream_without_azure_annotation_chunks(azure: FakeAzure, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="auto", messages=HELLO, stream=True))
    assert all(chunk.choices for chunk in chunks)  # no prompt_filter_results chunk
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "Hello from Azure."
    assert chunks[-1].choices[0].finish_reason == "stop"
    [call] = azure.calls
    assert call.body["stream"] is True
    assert call.body["stream_options"] == {"include_usage": True}  # the sidecar's own ask


def test_every_streamed_chunk_is_an_openai_chunk(azure: FakeAzure, sidecar: ServerThread) -> None:
    azure.queue(PROD, Reply(events=stream_events(annotations=True)))
    body = {
        "model": "auto",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = httpx.post(f"{sidecar.url}/v1/chat/completions", json=body)
    events = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e.strip()]
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(data) for data in events[:-1]]
    assert all(choice.delta is not None for chunk in chunks for choice in chunk.choices)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 16
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Azure."


def test_a_429_with_a_long_retry_after_falls_back_to_the_next_deployment(
    azure: FakeAzure, client: openai.OpenAI
) -> None:
    azure.queue(
        PROD,
        Reply(429, rate_limited(PROD), {"retry-after": "60", "retry-after-ms": "60000"}),
    )
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.parse().choices[0].message.content == "Hello from Azure."
    assert raw.headers["x-sidecar-model"] == "gpt-4o-backup"
    assert raw.headers["x-sidecar-attempts"] == "2"
    assert [call.path for call in azure.calls] == [
        f"/openai/deployments/{PROD}/chat/completions",
        f"/openai/deployments/{BACKUP}/chat/completions",
    ]


def test_a_stream_falls_back_on_a_429_before_its_first_chunk(
    azure: FakeAzure, client: openai.OpenAI
) -> None:
    azure.queue(PROD, Reply(429, rate_limited(PROD), {"retry-after": "86400"}))
    chunks = list(client.chat.completions.create(model="auto", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from Azure."
    assert [call.path.split("/")[3] for call in azure.calls] == [PROD, BACKUP]


def test_a_wait_given_only_in_milliseconds_is_waited_out_on_the_same_deployment(
    azure: FakeAzure, client: openai.OpenAI
) -> None:
    azure.queue(PROD, Reply(429, rate_limited(PROD), {"retry-after-ms": "300"}))
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.headers["x-sidecar-model"] == "gpt-4o"
    assert raw.headers["x-sidecar-attempts"] == "2"
    assert [call.path.split("/")[3] for call in azure.calls] == [PROD, PROD]


def test_a_content_filter_refusal_comes_back_as_a_400(
    azure: FakeAzure, client: openai.OpenAI
) -> None:
    azure.queue(PROD, Reply(400, CONTENT_FILTER_ERROR))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=HELLO)
    assert caught.value.status_code == 400
    assert caught.value.code == "content_filter"
    assert caught.value.param == "prompt"
    assert caught.value.type == "invalid_request_error"
    assert len(azure.calls) == 1  # the request's own fault: no fallback


def test_the_v1_api_takes_the_deployment_in_the_body(
    azure: FakeAzure, client: openai.OpenAI
) -> None:
    answer = client.chat.completions.create(model="gpt-4o-v1", messages=HELLO)
    assert answer.choices[0].message.content == "Hello from Azure."
    [call] = azure.calls
    assert call.path == "/openai/v1/chat/completions"
    assert call.api_version is None
    assert call.body["model"] == PROD
    assert call.headers["api-key"] == API_KEY


def test_sidecar_plugins_and_check_see_the_kind(tmp_path: Path) -> None:
    config = sidecar_config("https://contoso.openai.azure.com")
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "policies").mkdir()
    env = {**os.environ, KEY_ENV: API_KEY}

    def sidecar_cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sidecar", *args, "--config", str(path)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    listed = sidecar_cli("plugins", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    names = {plugin["name"]: plugin for plugin in json.loads(listed.stdout)["plugins"]}
    assert names["azure_openai"]["source"] == "entry point sidecar_azure_openai"
    checked = sidecar_cli("check")
    assert checked.returncode == 0, checked.stderr

    config["providers"]["azure"]["api_version"] = "latest"
    path.write_text(yaml.safe_dump(config))
    refused = sidecar_cli("check")
    assert refused.returncode == 2
    assert "providers.azure.api_version: expected 'v1' or a dated version" in refused.stderr
