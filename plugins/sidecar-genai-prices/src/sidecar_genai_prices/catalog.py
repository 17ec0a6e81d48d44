"""genai-prices' bundled price data, read as the sidecar's flat `Price`.

A model is looked up by its upstream name in the genai-prices provider that the sidecar's
provider stands for: the one whose API its `base_url` is (`https://api.groq.com/...` is
`groq`, `https://x.openai.azure.com` is `azure`), else the one its kind names
(`KIND_PROVIDERS`). An OpenAI-compatible server at an address genai-prices does not know,
or a kind it has no provider for, leaves the vendor to the name (`claude-*` is
Anthropic's, `gpt-*` OpenAI's). A name with a path (`openai/gpt-4o`, `models/gemini-2.5-pro`)
that is not found as it is is tried again by its last segment.

The price is the standard one in force today: a price with a start date counts from that
date, request variants (batch, service tiers, fast mode) are left out, and a price tiered
by prompt length is read at its base tier (prompts below the first threshold). A price
that is not a flat rate per token gives None: one that depends on the time of day, a fee
per request, or billing by characters, seconds, pages or pixels (`flat_price`).

Only the data in the installed wheel is read. Never `genai_prices.UpdatePrices`, which
downloads newer data, and never data it fetched for another library in the process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from genai_prices import data
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider, StartDateConstraint, TieredPrices

from sidecar.prices import Price

__all__ = ["KIND_PROVIDERS", "UNPRICED_KINDS", "flat_price", "price_for", "standard_prices"]

KIND_PROVIDERS: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "azure_openai": "azure",  # genai-prices' azure falls back to openai's (and others') models
}
"""Provider kinds that speak for one vendor, and that vendor's genai-prices id."""

OPENAI_COMPATIBLE = "openai"
"""The kind that any OpenAI-compatible server uses: at an unknown address, go by the name."""

UNPRICED_KINDS = frozenset({"demo"})
"""The built-in offline provider: its answers are canned and nothing is billed."""

_MAPPED = frozenset({"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"})
_LEFT_OUT = re.compile(
    # Audio, image and video tokens: the sidecar's usage does not tell them from text.
    r"(?:input|output|cache)_(?:audio|image|video)_(?:read_|write_(?:5m_|1h_)?)?mtok"
    # Cache writes by lifetime: the sidecar prices every write at the 5-minute rate.
    r"|cache_write_(?:5m|1h)_mtok"
    # Fees per tool call, which the sidecar never sees.
    r"|(?:web|social|storage)_searches_kcount|code_executions_kcount"
)
"""Rates a flat `Price` leaves out without being wrong for text tokens. Any other rate
(per request, per character, reasoning tokens apart, ...) makes the price not flat."""


@cache
def _snapshot() -> DataSnapshot:
    return DataSnapshot(providers=data.providers, from_auto_update=False)


def price_for(
    name: str, kind: str, base_url: str | None = None, *, now: datetime | None = None
) -> Price | None:
    """The flat price of the upstream model `name` served by a provider of `kind` at
    `base_url`, as of `now` (default: the current time); None when genai-prices does not
    know the model or its price is not flat."""
    if kind in UNPRICED_KINDS:
        return None
    try:
        provider = _provider(kind, base_url)
    except LookupError:
        return None
    model = _model(name, provider)
    if model is None:
        return None
    prices = standard_prices(model, now or datetime.now(UTC))
    return None if prices is None else flat_price(prices)


def _provider(kind: str, base_url: str | None) -> Provider | None:
    """The genai-prices provider to look in; None to infer it from the model's name."""
    snapshot = _snapshot()
    if base_url:
        try:
            return snapshot.find_provider(None, None, base_url)
        except LookupError:
            if kind == OPENAI_COMPATIBLE:
                return None
    provider_id = KIND_PROVIDERS.get(kind)
    return None if provider_id is None else snapshot.find_provider(None, provider_id, None)


def _model(name: str, provider: Provider | None) -> ModelInfo | None:
    refs = [name]
    if "/" in name:
        refs.append(name.rsplit("/", 1)[-1])
    for ref in refs:
        try:
            return _snapshot().find_provider_model(ref, provider, None, None)[1]
        except LookupError:
            continue
    return None


def standard_prices(model: ModelInfo, now: datetime) -> ModelPrice | None:
    """The model's standard prices in force at `now`; None when they change with the
    time of day (or with a condition this plugin does not know)."""
    if isinstance(model.prices, ModelPrice):
        return model.prices
    # As genai-prices resolves them: the last entry whose constraint holds, else the first.
    for conditional in reversed(model.prices):
        constraint = conditional.constraint
        if constraint is None:
            return conditional.prices
        if not isinstance(constraint, StartDateConstraint):
            return None  # a time-of-day price is in force: no one rate
        if constraint.active(now):
            return conditional.prices
    return model.prices[0].prices


def flat_price(prices: ModelPrice) -> Price | None:
    """`prices` as USD per million input, output, cache-read and cache-write tokens; a
    tiered rate at its base tier. None without both an input and an output rate, or with
    a rate that is not per token."""
    rates: dict[str, Any] = {
        key: value
        for key, value in vars(prices).items()
        if value is not None and not key.startswith("_")
    }
    if any(key not in _MAPPED and not _LEFT_OUT.fullmatch(key) for key in rates):
        return None
    if "input_mtok" not in rates or "output_mtok" not in rates:
        return None
    cache_write = rates.get("cache_write_mtok", rates.get("cache_write_5m_mtok"))
    return Price(
        input=_base_rate(rates["input_mtok"]),
        output=_base_rate(rates["output_mtok"]),
        cached_input=_base_rate(rates["cache_read_mtok"]) if "cache_read_mtok" in rates else None,
        cache_write=None if cache_write is None else _base_rate(cache_write),
    )


def _base_rate(rate: Decimal | TieredPrices) -> float:
    return float(rate.base if isinstance(rate, TieredPrices) else rate)
