"""End to end: the official OpenAI SDK -> a real sidecar -> a fake OpenAI upstream, and
what each request cost.

The sidecar loads its plugins as `sidecar serve` does (built-ins, then entry points), so
these tests pass only when the installed package's entry point brings in `genai_prices`.
A recorder plugin, passed in, keeps every `request_finished` record.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import genai_prices
import httpx
import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sidecar import RequestRecord, hookimpl
from sidecar.plugins import load_plugins
from sidecar.prices import bundled_price
from sidecar.runtime import build_runtime
from sidecar.server import uvicorn_config
from sidecar.settings import parse_settings

KEY_ENV = "SIDECAR_GENAI_PRICES_TEST_KEY"
PROMPT, CACHED, COMPLETION = 1_200, 800, 150
EXPLICIT_MODEL_POLICY = """\
description: A client that names a tier or a model gets it
when: request.model != "auto"
route: {requested: true}
"""


async def chat_completions(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT,
                "completion_tokens": COMPLETION,
                "total_tokens": PROMPT + COMPLETION,
                "prompt_tokens_details": {"cached_tokens": CACHED},
            },
        }
    )


UPSTREAM = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


class ServerThread:
    """A real uvicorn server on 127.0.0.1 in a thread, on a socket bound before it starts."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()
        assert not self.thread.is_alive(), "server did not stop"


class Recorder:
    """A plugin that keeps every RequestRecord it is given."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    @hookimpl
    def request_finished(self, record: RequestRecord) -> None:
        self.records.append(record)

    def wait(self, count: int, timeout: float = 5.0) -> list[RequestRecord]:
        """The records, once `count` have arrived: observers run after the response ends."""
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.records


def sidecar_config(upstream_url: str) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {
                "kind": "openai",
                "base_url": f"{upstream_url}/v1",
                "api_key_env": KEY_ENV,
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
            },
        },
        "models": {
            # Not in the sidecar's bundled table: the plugin prices it.
            "o1": {"provider": "openai", "name": "o1"},
            # In the bundled table too: the plugin is asked first.
            "mini": {"provider": "openai", "name": "gpt-4o-mini"},
            # A price in the file: the plugin is not asked.
            "pinned": {"provider": "openai", "name": "gpt-4o", "price": {"input": 1, "output": 2}},
        },
        "tiers": {"light": ["mini"], "frontier": ["o1", "pinned"]},
        "routing": {"default_tier": "light"},
        "ledger": {"enabled": False},
    }


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def sidecar(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base_dir = tmp_path_factory.mktemp("sidecar")
    (base_dir / "policies").mkdir()
    (base_dir / "policies" / "20-explicit-model.yaml").write_text(EXPLICIT_MODEL_POLICY)
    upstream = uvicorn.Config(UPSTREAM, log_level="warning", lifespan="off")
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(pytest.MonkeyPatch.context())
        env.setenv(KEY_ENV, "sk-upstream")
        upstream_url = stack.enter_context(ServerThread(upstream)).url
        settings = parse_settings(sidecar_config(upstream_url), base_dir=base_dir)
        # As `sidecar serve` loads plugins: built-ins and entry points; the recorder is extra.
        plugins = load_plugins(settings.plugins.disabled, extra=[("recorder", recorder)])
        runtime = build_runtime(settings, plugins)
        sources = {m.id: m.price_source for m in runtime.settings.models.values()}
        assert sources == {
            "o1": "plugin genai_prices",
            "mini": "plugin genai_prices",
            "pinned": "config",
        }
        server = ServerThread(uvicorn_config(runtime, "127.0.0.1", 0, log_level="warning"))
        yield stack.enter_context(server).url


def ask(sidecar: str, recorder: Recorder, model: str) -> RequestRecord:
    seen = len(recorder.records)
    with openai.OpenAI(base_url=f"{sidecar}/v1", api_key="sk-client", max_retries=0) as client:
        answer = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say hello"}]
        )
    assert answer.choices[0].message.content == "Hello."
    return recorder.wait(seen + 1)[seen]


def library_cost(name: str) -> float:
    usage = genai_prices.Usage(
        input_tokens=PROMPT, cache_read_tokens=CACHED, output_tokens=COMPLETION
    )
    return float(genai_prices.calc_price(usage, name, provider_id="openai").total_price)


def test_the_plugin_is_loaded_through_its_entry_point(sidecar: str) -> None:
    import sidecar_genai_prices

    described = httpx.get(f"{sidecar}/-/plugins").json()
    plugin = next(p for p in described["plugins"] if p["name"] == "genai_prices")
    assert plugin["source"] == "entry point sidecar_genai_prices"
    assert plugin["version"] == sidecar_genai_prices.__version__
    assert plugin["hooks"] == ["model_price"]
    assert described["failed"] == []


def test_a_model_the_sidecar_has_no_price_for_costs_the_genai_prices_price(
    sidecar: str, recorder: Recorder
) -> None:
    assert bundled_price("o1") is None
    record = ask(sidecar, recorder, "o1")
    assert record.model_id == "o1"
    expected = library_cost("o1")
    assert expected > 0
    assert record.cost_usd == pytest.approx(expected)


def test_the_plugin_is_asked_before_the_bundled_table(sidecar: str, recorder: Recorder) -> None:
    record = ask(sidecar, recorder, "mini")
    assert record.cost_usd == pytest.approx(library_cost("gpt-4o-mini"))


def test_a_price_in_the_config_wins(sidecar: str, recorder: Recorder) -> None:
    record = ask(sidecar, recorder, "pinned")
    assert record.cost_usd == pytest.approx((PROMPT * 1.0 + COMPLETION * 2.0) / 1e6)
    assert record.cost_usd != pytest.approx(library_cost("gpt-4o"))
