"""Everything a running sidecar holds, built from settings and plugins before it serves.

Building is where configuration meets plugins: provider kinds come from the
`register_providers` hook, so a `kind:` or a kind-specific key can only be checked here.
`sidecar check` runs the same checks without building anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .activation import config_maps, sample_request
from .cel import Environment, resolve_engine
from .cost import Pricing, price_models
from .errors import ConfigError, ConfigProblem
from .plugins import Plugins
from .provider import Provider, ProviderKind
from .reload import PolicyStore
from .routing import PolicyRouter
from .settings import Settings
from .signals import Signals, collect_classifiers
from .telemetry import NO_TELEMETRY, Telemetry
from .upstream import create_client

_COMMON_PROVIDER_KEYS = "kind, base_url, api_key_env, api_key_file, on_prem, timeouts"


@dataclass
class Runtime:
    settings: Settings
    plugins: Plugins
    client: httpx.AsyncClient
    providers: dict[str, Provider]
    router: PolicyRouter
    pricing: Pricing
    telemetry: Telemetry = field(default=NO_TELEMETRY)
    """NO_TELEMETRY unless `serve` found an exporter configured (see telemetry.from_environment)."""
    ready: bool = field(default=False)


def provider_kinds(plugins: Plugins) -> dict[str, ProviderKind]:
    """Kinds by name; a plugin's kind overrides a built-in one (built-ins are called last)."""
    kinds: dict[str, ProviderKind] = {}
    for plugin, result in plugins.call_each("register_providers"):
        for kind in result if isinstance(result, Iterable) else [result]:
            if not isinstance(kind, ProviderKind):
                plugins.fail(plugin, "register_providers", f"returned {kind!r}, not a ProviderKind")
                continue
            kinds.setdefault(kind.name, kind)
    return kinds


def check_providers(
    settings: Settings, kinds: dict[str, ProviderKind]
) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """Problems (fatal) and warnings (missing secrets: fatal only to `serve`)."""
    problems: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []
    known = ", ".join(sorted(kinds)) or "none"
    for name, provider in settings.providers.items():
        path = f"providers.{name}"
        kind = kinds.get(provider.kind)
        if kind is None:
            if provider.kind:
                problems.append(
                    ConfigProblem(
                        f"{path}.kind", f"unknown provider kind {provider.kind!r} (known: {known})"
                    )
                )
            continue
        for key in provider.options:
            if key not in kind.options:
                allowed = ", ".join([_COMMON_PROVIDER_KEYS, *sorted(kind.options)])
                problems.append(
                    ConfigProblem(f"{path}.{key}", f"unknown key (expected one of: {allowed})")
                )
        if kind.requires_base_url and not provider.base_url:
            problems.append(ConfigProblem(f"{path}.base_url", f"required for kind {kind.name!r}"))
        if kind.validate is not None:
            problems.extend(kind.validate(provider))
        try:
            provider.api_key()
        except ConfigError as exc:
            warnings.extend(exc.problems)
    return problems, warnings


def policy_store(settings: Settings, plugins: Plugins, signals: Signals) -> PolicyStore:
    """The policy store, not loaded yet; `load_first()` raises PolicyError."""
    engine = resolve_engine(settings.routing.cel_engine)
    tiers, models = config_maps(settings)

    def functions() -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for plugin, result in plugins.call_each("register_cel_functions", settings=settings):
            if not isinstance(result, Mapping):
                plugins.fail(
                    plugin, "register_cel_functions", f"returned {result!r}, not a mapping"
                )
                continue
            merged.update(result)
        return merged

    def samples(environment: Environment) -> list[Mapping[str, Any]]:
        sample = {
            "request": sample_request(),
            "signals": signals.sample(),
            "tiers": tiers,
            "models": models,
        }
        return [environment.prepare(sample)]

    return PolicyStore(settings, engine, functions, signals.outputs, samples)


def build_router(settings: Settings, plugins: Plugins) -> PolicyRouter:
    """Classifiers and the first load of the policies; raises PolicyError."""
    signals = collect_classifiers(plugins, settings)
    store = policy_store(settings, plugins, signals)
    store.load_first()
    return PolicyRouter(settings, store, signals)


def build_runtime(settings: Settings, plugins: Plugins) -> Runtime:
    """Build providers, classifiers, policies and the upstream client.

    Raises ConfigError or PolicyError listing every problem.
    """
    settings = price_models(settings, plugins)
    router = build_router(settings, plugins)
    kinds = provider_kinds(plugins)
    problems, missing_secrets = check_providers(settings, kinds)
    if problems or missing_secrets:
        raise ConfigError(problems + missing_secrets, str(settings.path or ""))
    client = create_client(settings.upstream)
    providers: dict[str, Provider] = {}
    for name, provider_settings in settings.providers.items():
        try:
            providers[name] = kinds[provider_settings.kind].factory(provider_settings, client)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except Exception as exc:  # a plugin's bug, reported against the key that chose it
            plugins.fail(provider_settings.kind, "provider factory", exc)
            problems.append(
                ConfigProblem(
                    f"providers.{name}", f"could not be created: {type(exc).__name__}: {exc}"
                )
            )
    if problems:
        raise ConfigError(problems, str(settings.path or ""))
    return Runtime(settings, plugins, client, providers, router, Pricing(settings))
