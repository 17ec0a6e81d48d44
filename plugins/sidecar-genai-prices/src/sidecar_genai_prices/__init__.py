"""List prices for llm-sidecar from genai-prices: the `model_price` hook.

Installed, this package is found through its entry point in the group `sidecar`. A model
that sidecar.yaml gives no `price:` is then priced from the data bundled with the
installed `genai-prices` (about 2,300 models), before the sidecar's own short table.
Nothing is fetched: see `sidecar_genai_prices.catalog`.
"""

from __future__ import annotations

from sidecar import ProviderSettings, hookimpl
from sidecar.prices import Price
from sidecar.settings import ModelSettings

__version__ = "0.1.0"

__all__ = ["__version__", "model_price"]


# trylast: a catalogue of list prices; a plugin that knows your prices goes first.
@hookimpl(trylast=True)
def model_price(model: ModelSettings, provider: ProviderSettings) -> Price | None:
    if provider.on_prem:
        return None  # hardware of your own has no list price
    # Imported on first use: genai-prices and its data take ~0.3 s to import.
    from .catalog import price_for

    return price_for(model.name, provider.kind, provider.base_url)
