"""Prices, bundled and configured, and what a request's usage costs against the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.cost import Pricing, cost_usd
from sidecar.errors import ConfigError
from sidecar.prices import BUNDLED, Price, bundled_price
from sidecar.provider import Usage
from sidecar.providers import anthropic, gemini
from sidecar.settings import parse_settings

from .support import fixture_json


def test_cost_prices_fresh_cached_and_cache_written_input_apart() -> None:
    price = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    usage = Usage(input_tokens=1_000, output_tokens=100, cached_input_tokens=600)
    assert cost_usd(usage, price) == pytest.approx((400 * 3 + 600 * 0.3 + 100 * 15) / 1e6)
    written = Usage(1_000, 0, cached_input_tokens=0, cache_write_input_tokens=1_000)
    assert cost_usd(written, price) == pytest.approx(1_000 * 3.75 / 1e6)


def test_cached_and_written_tokens_default_to_the_input_price() -> None:
    usage = Usage(1_000, 0, cached_input_tokens=500, cache_write_input_tokens=500)
    assert cost_usd(usage, Price(input=2.0)) == pytest.approx(1_000 * 2 / 1e6)


def test_inconsistent_usage_never_prices_more_tokens_than_were_sent() -> None:
    usage = Usage(input_tokens=10, output_tokens=0, cached_input_tokens=50)
    assert cost_usd(usage, Price(input=1.0, cached_input=0.1)) == pytest.approx(10 * 0.1 / 1e6)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4.1-nano", "gpt-4.1-nano"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
        ("GPT-4O", "gpt-4o"),
    ],
)
def test_bundled_prices_match_snapshots_to_their_family(name: str, family: str) -> None:
    assert bundled_price(name) == BUNDLED[family]


def test_unknown_models_have_no_bundled_price() -> None:
    assert bundled_price("llama-3.1-70b-instruct") is None
    assert bundled_price("gpt-4o-mini-tts-2025") is None


def _settings(tmp_path: Path, **extra: Any) -> Any:
    config = {
        "providers": {"p": {"kind": "demo"}},
        "models": {
            "cheap": {"provider": "p", "name": "gpt-4o-mini"},
            "dear": {"provider": "p", "price": {"input": 10, "output": 40}},
            "local": {"provider": "p", "name": "llama-3.1-8b"},
        },
        "tiers": {"light": ["cheap"], "frontier": ["dear", "cheap"], "onprem": ["local"]},
        "routing": {"default_tier": "light"},
        **extra,
    }
    return parse_settings(config, base_dir=tmp_path)


def test_models_without_a_price_take_the_bundled_one_or_none(tmp_path: Path) -> None:
    models = _settings(tmp_path).models
    assert (models["cheap"].price, models["cheap"].price_source) == (
        BUNDLED["gpt-4o-mini"],
        "bundled",
    )
    assert models["dear"].price_source == "config"
    assert (models["local"].price, models["local"].price_source) == (Price(), "none")


def test_the_baseline_is_the_frontier_tiers_first_model_unless_configured(tmp_path: Path) -> None:
    assert _settings(tmp_path).cost.baseline_model == "dear"
    assert _settings(tmp_path, cost={"baseline_model": "cheap"}).cost.baseline_model == "cheap"
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, cost={"baseline_model": "gpt-9"})
    assert "cost.baseline_model: unknown model 'gpt-9'" in str(caught.value)


def test_pricing_gives_cost_baseline_and_savings(tmp_path: Path) -> None:
    pricing = Pricing(_settings(tmp_path))
    costs = pricing.costs("cheap", Usage(1_000_000, 1_000_000))
    assert costs is not None
    assert costs.cost_usd == pytest.approx(0.15 + 0.60)
    assert costs.baseline_cost_usd == pytest.approx(10 + 40)
    assert costs.savings_usd == pytest.approx(50 - 0.75)
    assert pricing.costs("cheap", None) is None  # no usage reported: unknown, not free
    assert pricing.costs(None, Usage(1, 1)) is None


def test_cost_from_anthropic_usage_counts_cache_reads_and_writes() -> None:
    message = {
        **anthropic_message(),
        "usage": {
            "input_tokens": 100,
            "cache_read_input_tokens": 1_000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 50,
        },
    }
    _, usage = anthropic.to_chat_completion(message)
    price = BUNDLED["claude-sonnet-4"]  # 3 in, 15 out, 0.30 cache read, 3.75 cache write
    expected = (100 * 3 + 1_000 * 0.30 + 200 * 3.75 + 50 * 15) / 1e6
    assert cost_usd(usage, price) == pytest.approx(expected)


def test_cost_from_gemini_usage_counts_cached_content_and_thoughts() -> None:
    response = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {
            "promptTokenCount": 1_000,
            "cachedContentTokenCount": 800,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 60,
        },
    }
    _, usage = gemini.to_chat_completion(response, "gemini-2.5-flash")
    price = BUNDLED["gemini-2.5-flash"]  # 0.30 in, 2.50 out, 0.075 cached
    expected = (200 * 0.30 + 800 * 0.075 + 100 * 2.50) / 1e6
    assert cost_usd(usage, price) == pytest.approx(expected)


def test_cost_from_openai_usage_counts_cached_prompt_tokens() -> None:
    usage = Usage.from_openai(
        {
            "prompt_tokens": 2_000,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 1_024},
        }
    )
    assert usage is not None
    price = BUNDLED["gpt-4o-mini"]  # 0.15 in, 0.60 out, 0.075 cached
    assert cost_usd(usage, price) == pytest.approx((976 * 0.15 + 1_024 * 0.075 + 10 * 0.6) / 1e6)


def anthropic_message() -> dict[str, Any]:
    return dict(fixture_json("anthropic/message.json"))
