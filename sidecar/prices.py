"""Token prices: the `Price` of a model, and bundled list prices for common models.

A model without `price:` in sidecar.yaml is priced from this table by its upstream name
(dated snapshots and `-latest` aliases match their family), else at zero, which `sidecar
check` reports. List prices in USD per million tokens, standard tier, short context, as
published by each vendor; an operator with negotiated prices states them in the config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens. `cached_input` defaults to `input`; `cache_write` (tokens
    written to a prompt cache, Anthropic's cache creation) defaults to `input` too."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None


def _p(
    input: float, output: float, cached: float | None = None, write: float | None = None
) -> Price:
    return Price(input, output, cached, write)


BUNDLED: dict[str, Price] = {
    # OpenAI
    "gpt-5": _p(1.25, 10.00, 0.125),
    "gpt-5-mini": _p(0.25, 2.00, 0.025),
    "gpt-5-nano": _p(0.05, 0.40, 0.005),
    "gpt-4.1": _p(2.00, 8.00, 0.50),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _p(0.10, 0.40, 0.025),
    "gpt-4o": _p(2.50, 10.00, 1.25),
    "gpt-4o-mini": _p(0.15, 0.60, 0.075),
    "o3": _p(2.00, 8.00, 0.50),
    "o3-mini": _p(1.10, 4.40, 0.55),
    "o4-mini": _p(1.10, 4.40, 0.275),
    "gpt-4-turbo": _p(10.00, 30.00),
    "gpt-3.5-turbo": _p(0.50, 1.50),
    # Anthropic: cache reads at 0.1x input, 5-minute cache writes at 1.25x
    "claude-opus-4-1": _p(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4": _p(15.00, 75.00, 1.50, 18.75),
    "claude-sonnet-4-5": _p(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4": _p(3.00, 15.00, 0.30, 3.75),
    "claude-3-7-sonnet": _p(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-sonnet": _p(3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": _p(1.00, 5.00, 0.10, 1.25),
    "claude-3-5-haiku": _p(0.80, 4.00, 0.08, 1.00),
    "claude-3-haiku": _p(0.25, 1.25, 0.03, 0.30),
    # Google (prompts up to 200k tokens)
    "gemini-2.5-pro": _p(1.25, 10.00, 0.31),
    "gemini-2.5-flash": _p(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": _p(0.10, 0.40, 0.025),
    "gemini-2.0-flash": _p(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": _p(0.075, 0.30),
    "gemini-1.5-pro": _p(1.25, 5.00, 0.3125),
    "gemini-1.5-flash": _p(0.075, 0.30, 0.01875),
    # Mistral
    "mistral-large": _p(2.00, 6.00),
    "mistral-medium": _p(0.40, 2.00),
    "mistral-small": _p(0.10, 0.30),
    "codestral": _p(0.30, 0.90),
}

# A dated snapshot or alias of a family: gpt-4o-2024-08-06, claude-sonnet-4-20250514,
# claude-3-5-haiku-latest, gemini-2.5-flash-001, gemini-2.5-pro-preview-06-05.
_SUFFIX = re.compile(
    r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-\d{3}|-preview(?:-[\d-]+)?|-exp(?:-[\d-]+)?)$"
)


def bundled_price(model: str) -> Price | None:
    """The list price of a model by its upstream name, or None if it is not known."""
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o", "models/gemini-2.5-pro"
    while True:
        if name in BUNDLED:
            return BUNDLED[name]
        shorter = _SUFFIX.sub("", name)
        if shorter == name:
            return None
        name = shorter
