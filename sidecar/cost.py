"""What a request cost, what the baseline model would have cost, and the difference.

Costs come from the usage the upstream reported, priced per model (sidecar.yaml, else the
bundled list price). The baseline prices the same tokens at `cost.baseline_model`: the
savings are what routing saved against sending everything there. A request without usage
(refused, or an upstream that reports none) costs None: unknown, not zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .plugins import Plugins
from .prices import Price
from .provider import Usage
from .settings import Settings

PER_MILLION = 1_000_000


def cost_usd(usage: Usage, price: Price) -> float:
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_input_tokens, usage.input_tokens - cached)
    fresh = usage.input_tokens - cached - written
    cached_price = price.input if price.cached_input is None else price.cached_input
    write_price = price.input if price.cache_write is None else price.cache_write
    return (
        fresh * price.input
        + cached * cached_price
        + written * write_price
        + usage.output_tokens * price.output
    ) / PER_MILLION


@dataclass(frozen=True, slots=True)
class Costs:
    cost_usd: float
    baseline_cost_usd: float | None

    @property
    def savings_usd(self) -> float | None:
        if self.baseline_cost_usd is None:
            return None
        return self.baseline_cost_usd - self.cost_usd


class Pricing:
    """Prices a request's usage for the model that served it, and for the baseline."""

    def __init__(self, settings: Settings) -> None:
        self._prices = {model_id: model.price for model_id, model in settings.models.items()}
        baseline = settings.cost.baseline_model
        self.baseline_model = baseline
        self._baseline = settings.models[baseline].price if baseline else None

    def costs(self, model_id: str | None, usage: Usage | None) -> Costs | None:
        if usage is None or model_id is None or model_id not in self._prices:
            return None
        baseline = cost_usd(usage, self._baseline) if self._baseline is not None else None
        return Costs(cost_usd(usage, self._prices[model_id]), baseline)


def price_models(settings: Settings, plugins: Plugins) -> Settings:
    """Settings whose unpriced models carry what a `model_price` plugin says, if one does.

    Precedence: `price:` in sidecar.yaml, then plugins, then the bundled list prices."""
    models = dict(settings.models)
    for model_id, model in settings.models.items():
        if model.price_source == "config" or model.provider not in settings.providers:
            continue
        provider = settings.providers[model.provider]
        for plugin, price in plugins.call_each("model_price", model=model, provider=provider):
            if not isinstance(price, Price):
                plugins.fail(plugin, "model_price", f"returned {price!r}, not a Price")
                continue
            models[model_id] = dataclasses.replace(
                model, price=price, price_source=f"plugin {plugin}"
            )
            break
    return dataclasses.replace(settings, models=models)
