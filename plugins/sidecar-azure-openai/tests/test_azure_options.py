"""The `azure_openai` section: validation with key paths, and the URLs it makes (no sockets)."""

from __future__ import annotations

import datetime
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any

import pytest
import sidecar_azure_openai
from sidecar_azure_openai import AzureOptions
from sidecar_azure_openai.options import validate

from sidecar import ConfigError, ProviderKind, ProviderSettings
from sidecar.plugins import load_plugins
from sidecar.runtime import check_providers, provider_kinds
from sidecar.settings import parse_settings

ENDPOINT = "https://contoso.openai.azure.com"


def settings(base_url: str | None = ENDPOINT, **options: Any) -> ProviderSettings:
    return ProviderSettings(
        name="azure",
        kind="azure_openai",
        base_url=base_url,
        api_key_env="AZURE_OPENAI_API_KEY",
        options=options,
    )


def problems(provider: ProviderSettings) -> list[str]:
    return [str(problem) for problem in validate(provider)]


def test_the_entry_point_names_the_module_and_the_versions_agree() -> None:
    [entry] = [e for e in entry_points(group="sidecar") if e.name == "azure_openai"]
    assert entry.value == "sidecar_azure_openai"
    assert entry.load() is sidecar_azure_openai
    assert version("sidecar-azure-openai") == sidecar_azure_openai.__version__


def test_register_providers_returns_the_kind() -> None:
    kind = sidecar_azure_openai.register_providers()
    assert isinstance(kind, ProviderKind)
    assert kind.name == "azure_openai"
    assert kind.options == {"api_version", "auth"}
    assert kind.requires_base_url


def test_every_public_name_exists() -> None:
    for name in sidecar_azure_openai.__all__:
        assert hasattr(sidecar_azure_openai, name)


def test_a_dated_version_puts_deployment_and_version_in_the_url() -> None:
    options = AzureOptions.from_settings(settings(ENDPOINT + "/"))
    assert options.per_deployment
    assert options.chat_url("prod-gpt-4o") == (
        f"{ENDPOINT}/openai/deployments/prod-gpt-4o/chat/completions?api-version=2024-10-21"
    )
    assert "/deployments/a%2Fb%20c/" in options.chat_url("a/b c")


def test_v1_has_one_url_for_every_deployment() -> None:
    options = AzureOptions.from_settings(settings(api_version="v1"))
    assert not options.per_deployment
    assert options.chat_url("anything") == f"{ENDPOINT}/openai/v1/chat/completions"


def test_a_gateway_path_in_front_of_azure_is_kept() -> None:
    options = AzureOptions.from_settings(settings("https://apim.example.com/aoai/"))
    assert options.chat_url("d").startswith("https://apim.example.com/aoai/openai/deployments/d/")


@pytest.mark.parametrize(
    "value",
    ["2024-10-21", "2025-04-01-preview", "2024-09-01-preview", "v1", datetime.date(2024, 10, 21)],
)
def test_good_api_versions(value: object) -> None:
    assert problems(settings(api_version=value)) == []
    assert AzureOptions.from_settings(settings(api_version=value)).api_version == str(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("latest", "expected 'v1' or a dated version such as '2024-10-21'"),
        ("2024-13-01", "expected 'v1' or a dated version"),
        ("2024-10-21-beta", "expected 'v1' or a dated version"),
        (20241021, "expected a string"),
        ("2024-06-01", "'2024-06-01' predates stream usage (stream_options)"),
        ("2024-08-01-preview", "use 2024-09-01-preview or later"),
    ],
)
def test_bad_api_versions_name_the_key(value: object, message: str) -> None:
    [problem] = problems(settings(api_version=value))
    assert problem.startswith("providers.azure.api_version: ")
    assert message in problem


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://contoso.openai.azure.com", "expected an https:// URL"),
        (f"{ENDPOINT}/openai", "the sidecar adds /openai/... itself"),
        (f"{ENDPOINT}/openai/deployments/gpt-4o", "the sidecar adds /openai/... itself"),
        (f"{ENDPOINT}/?api-version=2024-10-21", "without a query or fragment"),
    ],
)
def test_bad_endpoints_name_the_key(base_url: str, message: str) -> None:
    [problem] = problems(settings(base_url))
    assert problem.startswith("providers.azure.base_url: ")
    assert message in problem


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "http://localhost:8080/prefix"])
def test_plain_http_is_accepted_on_loopback(base_url: str) -> None:
    assert problems(settings(base_url)) == []


def test_auth_mode_and_a_credential_are_checked() -> None:
    assert problems(settings(auth="entra_id")) == []
    [problem] = problems(settings(auth="managed_identity"))
    assert problem.startswith("providers.azure.auth: expected one of: api_key, entra_id")
    keyless = ProviderSettings(name="azure", kind="azure_openai", base_url=ENDPOINT)
    [problem] = problems(keyless)
    assert problem == (
        "providers.azure.api_key_env: kind 'azure_openai' needs an API key: "
        "give api_key_env or api_key_file"
    )


def test_from_settings_requires_the_endpoint() -> None:
    with pytest.raises(ConfigError) as caught:
        AzureOptions.from_settings(settings(None))
    assert [str(p) for p in caught.value.problems] == [
        "providers.azure.base_url: required for kind 'azure_openai'"
    ]


def test_from_settings_raises_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        AzureOptions.from_settings(settings("http://example.com", api_version="x", auth="y"))
    paths = [problem.path for problem in caught.value.problems]
    assert paths == [
        "providers.azure.base_url",
        "providers.azure.api_version",
        "providers.azure.auth",
    ]


def test_the_core_checks_a_section_with_the_plugin_loaded(tmp_path: Path) -> None:
    config = {
        "providers": {
            "azure": {"kind": "azure_openai", "api_key_env": "AZURE_OPENAI_API_KEY"},
            "typo": {
                "kind": "azure_openai",
                "base_url": ENDPOINT,
                "api_key_env": "AZURE_OPENAI_API_KEY",
                "deployment": "gpt-4o",
            },
        },
        "models": {"gpt-4o": {"provider": "azure"}},
        "tiers": {"frontier": ["gpt-4o"]},
        "routing": {"default_tier": "frontier"},
    }
    loaded = parse_settings(config, base_dir=tmp_path)
    kinds = provider_kinds(load_plugins())
    found, _ = check_providers(loaded, kinds)
    assert [str(p) for p in found] == [
        "providers.azure.base_url: required for kind 'azure_openai'",
        "providers.typo.deployment: unknown key (expected one of: kind, base_url, api_key_env, "
        "api_key_file, on_prem, timeouts, api_version, auth)",
    ]
