"""The plugin's prices against genai-prices' own: lookups by kind, by address and by name,
what has no flat price, and that nothing is fetched.

Expected rates are not written down here: they are what genai-prices' `calc_price`
charges for a thousand tokens of each kind, so the tests hold for any data release.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pluggy
import pytest
import sidecar_genai_prices
from genai_prices import data_snapshot
from genai_prices.types import (
    ClauseEquals,
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    StartDateConstraint,
    Tier,
    TieredPrices,
    TimeOfDateConstraint,
)
from sidecar_genai_prices import catalog
from sidecar_genai_prices.catalog import flat_price, price_for, standard_prices

from sidecar import hookimpl, hookspecs
from sidecar.cost import cost_usd, price_models
from sidecar.plugins import ENTRY_POINT_GROUP, Plugins
from sidecar.prices import Price
from sidecar.provider import Usage
from sidecar.settings import ModelSettings, ProviderSettings, parse_settings

THOUSAND = 1_000

# (upstream name, provider kind, base_url), and how genai-prices is asked for the same model.
GOOGLE_API = "https://generativelanguage.googleapis.com/v1beta"
GROQ_API = "https://api.groq.com/openai/v1"
MISTRAL_API = "https://api.mistral.ai/v1"
KNOWN: list[tuple[str, str, str | None, dict[str, str]]] = [
    ("gpt-4o", "openai", None, {"provider_id": "openai"}),
    ("gpt-4o-mini-2024-07-18", "openai", None, {"provider_id": "openai"}),
    ("gpt-4.1-nano", "openai", "https://api.openai.com/v1", {"provider_id": "openai"}),
    ("o3-mini", "openai", None, {"provider_id": "openai"}),
    ("claude-sonnet-4-5", "anthropic", None, {"provider_id": "anthropic"}),
    ("claude-3-5-haiku-latest", "anthropic", None, {"provider_id": "anthropic"}),
    ("claude-sonnet-4-20250514", "anthropic", None, {"provider_id": "anthropic"}),
    ("gemini-2.5-flash", "gemini", None, {"provider_id": "google"}),
    ("gemini-2.5-pro", "gemini", None, {"provider_id": "google"}),
    ("gemini-2.0-flash", "gemini", GOOGLE_API, {"provider_api_url": GOOGLE_API}),
    # Azure: a deployment named after its model, at the resource's address.
    ("gpt-4o", "azure_openai", "https://contoso.openai.azure.com", {"provider_id": "azure"}),
    # Kind openai at a vendor's address: that vendor's price list.
    ("llama-3.3-70b-versatile", "openai", GROQ_API, {"provider_api_url": GROQ_API}),
    ("mistral-large-latest", "openai", MISTRAL_API, {"provider_api_url": MISTRAL_API}),
    # Kind openai at an unknown address (a proxy), or another plugin's kind: by the name.
    ("claude-sonnet-4-5", "openai", "http://127.0.0.1:4000/v1", {}),
    ("gpt-4o-mini", "echo", None, {}),
]


def library_rates(name: str, where: dict[str, str]) -> Price:
    """What genai-prices charges per million tokens of each kind, from its `calc_price`."""

    def per_million(**tokens: int) -> float:
        calc = genai_prices.calc_price(genai_prices.Usage(**tokens), name, **where)  # type: ignore[call-overload]
        return float(calc.total_price) * 1_000_000 / THOUSAND

    return Price(
        input=per_million(input_tokens=THOUSAND),
        output=per_million(output_tokens=THOUSAND),
        cached_input=per_million(input_tokens=THOUSAND, cache_read_tokens=THOUSAND),
        cache_write=per_million(input_tokens=THOUSAND, cache_write_tokens=THOUSAND),
    )


def explicit(price: Price) -> Price:
    """`price` with the defaults the sidecar applies (cache reads and writes at `input`)."""
    return Price(
        price.input,
        price.output,
        price.input if price.cached_input is None else price.cached_input,
        price.input if price.cache_write is None else price.cache_write,
    )


@pytest.mark.parametrize(("name", "kind", "base_url", "where"), KNOWN)
def test_known_models_cost_what_genai_prices_charges(
    name: str, kind: str, base_url: str | None, where: dict[str, str]
) -> None:
    price = price_for(name, kind, base_url)
    assert price is not None
    expected = library_rates(name, where)
    assert astuple(explicit(price)) == pytest.approx(astuple(expected))
    # And a whole request, cache reads and writes included, costs what the library says.
    usage = Usage(
        input_tokens=9_000,
        output_tokens=700,
        cached_input_tokens=4_000,
        cache_write_input_tokens=1_500,
    )
    calc = genai_prices.calc_price(  # type: ignore[call-overload]
        genai_prices.Usage(
            input_tokens=9_000, output_tokens=700, cache_read_tokens=4_000, cache_write_tokens=1_500
        ),
        name,
        **where,
    )
    assert cost_usd(usage, price) == pytest.approx(float(calc.total_price))


def test_sanity_list_prices() -> None:
    assert price_for("gpt-4o", "openai") == Price(2.5, 10.0, 1.25, None)
    assert price_for("claude-sonnet-4-5-20250929", "anthropic") == Price(3.0, 15.0, 0.3, 3.75)


def test_a_path_in_the_name_is_tried_without_it() -> None:
    assert price_for("models/gemini-2.5-flash", "gemini") == price_for("gemini-2.5-flash", "gemini")
    assert price_for("openai/gpt-4o", "echo") == price_for("gpt-4o", "openai")


@pytest.mark.parametrize(
    ("name", "kind", "base_url"),
    [
        ("no-such-model", "openai", None),
        ("no-such-model", "echo", None),
        ("gpt-4o", "anthropic", None),  # not Anthropic's: no other vendor's price is guessed
        ("gpt-4o", "openai", "https://api.groq.com/openai/v1"),  # nor Groq's
        ("llama-3.1-8b-instruct", "openai", "http://10.0.0.5:8000/v1"),  # a local server
        ("gpt-4o", "demo", None),  # the offline demo provider bills nothing
    ],
)
def test_unknown_models_have_no_price(name: str, kind: str, base_url: str | None) -> None:
    assert price_for(name, kind, base_url) is None


def test_the_hook_prices_by_upstream_name_and_kind_and_skips_on_prem_providers() -> None:
    model = ModelSettings("fast", "p", "gpt-4o")
    assert sidecar_genai_prices.model_price(model, ProviderSettings("p", "openai")) == Price(
        2.5, 10.0, 1.25, None
    )
    on_prem = ProviderSettings("p", "openai", base_url="http://10.0.0.5:8000/v1", on_prem=True)
    assert sidecar_genai_prices.model_price(model, on_prem) is None
    assert sidecar_genai_prices.model_price(ModelSettings("x", "p", "x"), on_prem) is None


# Price shapes, on models built here: the rules hold whatever the data says.


def _model(prices: ModelPrice | list[ConditionalPrice]) -> ModelInfo:
    return ModelInfo(id="m", match=ClauseEquals(equals="m"), prices=prices)


def _mp(**rates: Decimal | TieredPrices) -> ModelPrice:
    return ModelPrice(**rates)


D = Decimal


def test_a_tiered_price_is_read_at_its_base_tier() -> None:
    tiered = _mp(
        input_mtok=TieredPrices(base=D("1.25"), tiers=[Tier(start=200_000, price=D("2.5"))]),
        output_mtok=TieredPrices(base=D("10"), tiers=[Tier(start=200_000, price=D("15"))]),
        cache_read_mtok=TieredPrices(base=D("0.125"), tiers=[Tier(start=200_000, price=D("0.25"))]),
    )
    assert flat_price(tiered) == Price(1.25, 10.0, 0.125, None)


def test_a_tiered_model_in_the_data_is_under_priced_only_beyond_its_first_tier() -> None:
    _, model = catalog._snapshot().find_provider_model("gemini-2.5-pro", None, "google", None)
    now = datetime.now(UTC)
    prices = standard_prices(model, now)
    assert prices is not None
    assert isinstance(prices.input_mtok, TieredPrices)
    threshold = prices.input_mtok.tiers[0].start
    price = price_for("gemini-2.5-pro", "gemini")
    assert price is not None
    assert price.input == float(prices.input_mtok.base)
    for prompt, same in ((threshold, True), (threshold + 1, False)):
        calc = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=prompt), "gemini-2.5-pro", provider_id="google"
        )
        flat = cost_usd(Usage(input_tokens=prompt), price)
        assert (float(calc.total_price) == pytest.approx(flat)) is same


def test_the_price_in_force_is_the_latest_that_has_started() -> None:
    model = _model(
        [
            ConditionalPrice(constraint=None, prices=_mp(input_mtok=D(1), output_mtok=D(2))),
            ConditionalPrice(
                constraint=StartDateConstraint(start_date=date(2025, 1, 1)),
                prices=_mp(input_mtok=D(3), output_mtok=D(4)),
            ),
            ConditionalPrice(
                constraint=StartDateConstraint(start_date=date(2030, 1, 1)),
                prices=_mp(input_mtok=D(5), output_mtok=D(6)),
            ),
        ]
    )
    assert standard_prices(model, datetime(2024, 6, 1, tzinfo=UTC)) == _mp(
        input_mtok=D(1), output_mtok=D(2)
    )
    assert standard_prices(model, datetime(2026, 6, 1, tzinfo=UTC)) == _mp(
        input_mtok=D(3), output_mtok=D(4)
    )
    assert standard_prices(model, datetime(2031, 6, 1, tzinfo=UTC)) == _mp(
        input_mtok=D(5), output_mtok=D(6)
    )


def test_a_price_that_changes_with_the_time_of_day_has_no_flat_rate() -> None:
    off_peak = ConditionalPrice(constraint=None, prices=_mp(input_mtok=D(1), output_mtok=D(2)))
    peak = ConditionalPrice(
        constraint=TimeOfDateConstraint(
            start_time=time(0, 30, tzinfo=UTC), end_time=time(16, 30, tzinfo=UTC)
        ),
        prices=_mp(input_mtok=D(2), output_mtok=D(4)),
    )
    for hour in (3, 20):  # in the window and out of it: the answer does not depend on when
        assert (
            standard_prices(_model([off_peak, peak]), datetime(2026, 1, 1, hour, tzinfo=UTC))
            is None
        )
    # Once a later flat price has started, the time-of-day one is history.
    later = ConditionalPrice(
        constraint=StartDateConstraint(start_date=date(2026, 1, 1)),
        prices=_mp(input_mtok=D(3), output_mtok=D(6)),
    )
    model = _model([off_peak, peak, later])
    assert standard_prices(model, datetime(2025, 12, 31, 3, tzinfo=UTC)) is None
    assert standard_prices(model, datetime(2026, 1, 2, 3, tzinfo=UTC)) == later.prices


def test_rates_that_are_not_per_token_leave_no_price() -> None:
    per_request = _mp(input_mtok=D(1), output_mtok=D(1), requests_kcount=D(12))
    per_character = _mp(input_mchars=D(15))
    per_hour = _mp(input_mtok=D(2), output_mtok=D(8), audio_hours=D("0.36"))
    reasoning_apart = _mp(input_mtok=D(2), output_mtok=D(8), output_reasoning_mtok=D(3))
    input_only = _mp(input_mtok=D("0.02"))  # an embedding model
    for prices in (per_request, per_character, per_hour, reasoning_apart, input_only, _mp()):
        assert flat_price(prices) is None, prices


def test_rates_the_sidecar_cannot_tell_apart_are_left_out() -> None:
    prices = _mp(
        input_mtok=D("0.3"),
        output_mtok=D("2.5"),
        cache_read_mtok=D("0.03"),
        cache_write_mtok=D("0.375"),
        cache_write_1h_mtok=D("0.6"),
        input_audio_mtok=D(1),
        cache_audio_read_mtok=D("0.1"),
        output_image_mtok=D(30),
        web_searches_kcount=D(35),
    )
    assert flat_price(prices) == Price(0.3, 2.5, 0.03, 0.375)


# Nothing is fetched.


def _deny(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"network access attempted: {args!r}")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _deny)
    monkeypatch.setattr(socket.socket, "connect_ex", _deny)
    monkeypatch.setattr(socket, "getaddrinfo", _deny)
    catalog._snapshot.cache_clear()  # lookups start from the bundled data again
    yield
    catalog._snapshot.cache_clear()


def test_lookups_touch_no_network(no_network: None) -> None:
    for name, kind, base_url, _ in KNOWN:
        assert price_for(name, kind, base_url) is not None
    assert price_for("no-such-model", "echo") is None
    assert data_snapshot._custom_snapshot is None  # no UpdatePrices ran


def test_importing_and_pricing_in_a_fresh_process_touches_no_network() -> None:
    """The import too: run where any connection or name lookup raises."""
    script = textwrap.dedent(
        """
        import socket

        def deny(*args, **kwargs):
            raise SystemExit(f"network access attempted: {args!r}")

        socket.socket.connect = socket.socket.connect_ex = deny
        socket.getaddrinfo = deny

        import sidecar_genai_prices
        from sidecar.settings import ModelSettings, ProviderSettings, parse_settings

        price = sidecar_genai_prices.model_price(
            ModelSettings("m", "p", "claude-sonnet-4-5"), ProviderSettings("p", "anthropic")
        )
        assert price is not None, price
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_data_fetched_for_another_library_is_not_used() -> None:
    """Logfire or Pydantic AI may run genai-prices' UpdatePrices in the same process; the
    plugin keeps to the installed release's data all the same."""
    catalog._snapshot.cache_clear()
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot([], from_auto_update=True))
    try:
        assert price_for("gpt-4o", "openai") == Price(2.5, 10.0, 1.25, None)
    finally:
        data_snapshot.set_custom_snapshot(None)


def test_a_plugin_that_knows_your_prices_goes_first(tmp_path: Path) -> None:
    """Registered before this one, it is still asked first: this plugin is `trylast`."""

    class Negotiated:
        @hookimpl
        def model_price(self) -> Price:
            return Price(1.0, 2.0)

    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    manager.register(Negotiated(), name="negotiated")
    manager.register(sidecar_genai_prices, name="genai_prices")
    config = {
        "providers": {"p": {"kind": "openai"}},
        "models": {"m": {"provider": "p", "name": "gpt-4o"}},
        "tiers": {"light": ["m"]},
        "routing": {"default_tier": "light"},
    }
    priced = price_models(parse_settings(config, base_dir=tmp_path), Plugins(manager))
    assert (priced.models["m"].price, priced.models["m"].price_source) == (
        Price(1.0, 2.0),
        "plugin negotiated",
    )
    manager.unregister(name="negotiated")
    priced = price_models(parse_settings(config, base_dir=tmp_path), Plugins(manager))
    assert (priced.models["m"].price, priced.models["m"].price_source) == (
        Price(2.5, 10.0, 1.25, None),
        "plugin genai_prices",
    )
