"""The bundled configuration and example policies, served for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.plugins import load_plugins
from sidecar.runtime import build_runtime
from sidecar.server import uvicorn_config
from sidecar.settings import load_settings

from ..support import REPO, ServerThread
from .conftest import sdk


@pytest.fixture(scope="module")
def example() -> Iterator[ServerThread]:
    settings = load_settings(REPO / "sidecar.yaml")
    runtime = build_runtime(settings, load_plugins(settings.plugins.disabled))
    with ServerThread(uvicorn_config(runtime, "127.0.0.1", 0, log_level="warning")) as server:
        yield server


@pytest.mark.parametrize(
    ("prompt", "tier", "model", "policy"),
    [
        (
            "Refund the order to my card 5555 5555 5555 4444 please, the total was 129.90.",
            "onprem",
            "demo-onprem",
            "10-sensitive",
        ),
        (
            "Prove that the sum of two odd numbers is even.",
            "frontier",
            "demo-frontier",
            "30-frontier",
        ),
        ("Translate into French: where is the train station?", "mid", "demo-mid", "40-mid"),
        ("What is the capital of Canada?", "light", "demo-light", "50-light"),
    ],
)
def test_prompts_go_where_the_example_policies_send_them(
    example: ServerThread, prompt: str, tier: str, model: str, policy: str
) -> None:
    raw = sdk(example).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": prompt}]
    )
    assert raw.headers["x-sidecar-tier"] == tier
    assert raw.headers["x-sidecar-model"] == model
    assert raw.headers["x-sidecar-policy"] == policy
    assert model in (raw.parse().choices[0].message.content or "")


def test_a_card_number_stays_home_even_when_the_client_names_a_cloud_model(
    example: ServerThread,
) -> None:
    raw = sdk(example).chat.completions.with_raw_response.create(
        model="demo-frontier",
        messages=[{"role": "user", "content": "Card 4012 8888 8888 1881, expiry 11/28, CVV 123."}],
        stream=True,
    )
    chunks = list(raw.parse())
    assert raw.headers["x-sidecar-tier"] == "onprem"
    assert "demo-onprem" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
