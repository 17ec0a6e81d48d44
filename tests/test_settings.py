"""`sidecar.yaml` parsing: defaults, path resolution, and one exact message per problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.errors import ConfigError
from sidecar.settings import (
    DEFAULT_CONFIG,
    Price,
    ProviderSettings,
    Timeouts,
    config_path,
    load_settings,
    parse_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

TOP_KEYS = (
    "breaker, classifiers, cost, ledger, models, plugins, providers, routing, server, telemetry, "
    "tiers, upstream"
)
SERVER_KEYS = (
    "host, keepalive_seconds, max_body_bytes, port, response_model, shutdown_grace_seconds"
)

MINIMAL: dict[str, Any] = {
    "providers": {"p": {"kind": "demo"}},
    "models": {"a": {"provider": "p"}, "b": {"provider": "p"}},
    "tiers": {"t": ["a", "b"]},
    "routing": {"default_tier": "t"},
}


def minimal(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    data.update(overrides)
    return data


def problems(data: object, base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=base_dir)
    return [str(problem) for problem in info.value.problems]


def test_example_config_loads() -> None:
    settings = load_settings(REPO_ROOT / "sidecar.yaml")

    assert list(settings.tiers) == ["light", "mid", "frontier", "onprem"]
    assert settings.tiers["onprem"] == ("demo-onprem",)
    assert settings.routing.default_tier == "mid"
    assert settings.routing.policies == REPO_ROOT / "policies"
    assert settings.providers["demo-onprem"].on_prem is True
    assert settings.providers["demo-cloud"].on_prem is False
    assert settings.providers["demo-cloud"].kind == "demo"
    assert settings.models["demo-mid"].price == Price(input=3.0, output=15.0, cached_input=0.3)
    assert settings.models["demo-light"].price == Price(input=0.25, output=1.25)
    assert settings.models["demo-onprem"].price == Price(0.0, 0.0, None)
    assert settings.models["demo-onprem"].provider == "demo-onprem"
    assert settings.tiers_of("demo-mid") == ("mid",)
    assert settings.path == REPO_ROOT / "sidecar.yaml"


def test_defaults(tmp_path: Path) -> None:
    settings = parse_settings(MINIMAL, base_dir=tmp_path)

    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8787
    assert settings.server.max_body_bytes == 8 * 1024 * 1024
    assert settings.server.shutdown_grace_seconds == 30.0
    assert settings.server.response_model == "upstream"
    assert settings.upstream.max_connections == 256
    provider = settings.providers["p"]
    assert provider.timeouts == Timeouts(connect=5.0, first_byte=60.0, idle=60.0, total=600.0)
    assert provider.base_url is None
    assert provider.on_prem is False
    assert provider.api_key() is None
    assert settings.models["a"].name == "a"
    assert settings.models["a"].price == Price(0.0, 0.0, None)
    assert settings.plugins.disabled == ()
    assert settings.path is None


def test_explicit_values_and_int_numbers_become_floats(tmp_path: Path) -> None:
    data = minimal(
        server={"host": "0.0.0.0", "port": 9000, "response_model": "model_id"},
        plugins={"disabled": ["cost"]},
    )
    data["providers"]["p"].update(
        base_url="https://api.example.com/v1",
        timeouts={"connect": 3, "total": 12.5},
        custom_option=1,
    )
    data["models"]["a"].update(name="upstream-a", price={"input": 1, "output": 2.5})

    settings = parse_settings(data, base_dir=tmp_path)

    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9000)
    assert settings.server.response_model == "model_id"
    provider = settings.providers["p"]
    assert provider.base_url == "https://api.example.com/v1"
    assert provider.timeouts == Timeouts(connect=3.0, first_byte=60.0, idle=60.0, total=12.5)
    assert isinstance(provider.timeouts.connect, float)
    assert provider.options == {"custom_option": 1}
    assert settings.models["a"].name == "upstream-a"
    assert settings.models["a"].price == Price(input=1.0, output=2.5)
    assert settings.plugins.disabled == ("cost",)


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "secrets").mkdir()
    (config_dir / "secrets" / "key").write_text("  sk-from-file\n")
    config = config_dir / "sidecar.yaml"
    config.write_text(
        "providers:\n"
        "  p: {kind: openai, api_key_file: secrets/key}\n"
        "models:\n"
        "  a: {provider: p}\n"
        "tiers:\n"
        "  t: [a]\n"
        "routing:\n"
        "  default_tier: t\n"
        "  policies: rules/dir\n"
    )

    settings = load_settings(config)

    assert settings.routing.policies == config_dir / "rules" / "dir"
    assert settings.providers["p"].api_key_file == config_dir / "secrets" / "key"
    assert settings.providers["p"].api_key() == "sk-from-file"


def test_parse_settings_resolves_against_base_dir(tmp_path: Path) -> None:
    data = minimal(routing={"default_tier": "t"})
    data["providers"]["p"]["api_key_file"] = "k.txt"

    settings = parse_settings(data, base_dir=tmp_path)

    assert settings.routing.policies == tmp_path / "policies"
    assert settings.providers["p"].api_key_file == tmp_path / "k.txt"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    key = tmp_path / "abs-key"
    data = minimal(routing={"default_tier": "t", "policies": str(tmp_path / "pol")})
    data["providers"]["p"]["api_key_file"] = str(key)

    settings = parse_settings(data, base_dir=Path("/elsewhere"))

    assert settings.routing.policies == tmp_path / "pol"
    assert settings.providers["p"].api_key_file == key


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("serverr", {}, f"serverr: unknown key (expected one of: {TOP_KEYS})"),
        ("server.prot", 1, f"server.prot: unknown key (expected one of: {SERVER_KEYS})"),
        (
            "upstream.pool",
            1,
            "upstream.pool: unknown key (expected one of: "
            "keepalive_expiry, max_connections, max_keepalive_connections)",
        ),
        (
            "providers.p.timeouts.conect",
            1,
            "providers.p.timeouts.conect: unknown key "
            "(expected one of: connect, first_byte, idle, total)",
        ),
        (
            "models.a.prices",
            {},
            "models.a.prices: unknown key (expected one of: name, price, provider)",
        ),
        (
            "models.a.price.inptu",
            1,
            "models.a.price.inptu: unknown key "
            "(expected one of: cache_write, cached_input, input, output)",
        ),
        (
            "routing.default",
            "t",
            "routing.default: unknown key (expected one of: cel_engine, deadline_seconds, "
            "default_tier, max_attempts, max_retry_wait_seconds, policies, "
            "sensitive_on_prem_only)",
        ),
        ("plugins.enabled", [], "plugins.enabled: unknown key (expected one of: disabled)"),
        ("server", [1], "server: expected a mapping, got list"),
        ("upstream", "x", "upstream: expected a mapping, got string"),
        ("plugins", 3, "plugins: expected a mapping, got int"),
        ("providers.p.timeouts", 5, "providers.p.timeouts: expected a mapping, got int"),
        ("models.a.price", 1.5, "models.a.price: expected a mapping, got float"),
        ("server.port", "8787", "server.port: expected int, got string"),
        ("server.port", True, "server.port: expected int, got boolean"),
        ("server.port", 80.0, "server.port: expected int, got float"),
        ("server.port", 65536, "server.port: expected a port number from 0 to 65535"),
        ("server.port", -1, "server.port: expected a port number from 0 to 65535"),
        ("server.host", 127, "server.host: expected str, got int"),
        ("server.max_body_bytes", 0, "server.max_body_bytes: must be greater than 0"),
        ("server.max_body_bytes", False, "server.max_body_bytes: expected int, got boolean"),
        (
            "server.shutdown_grace_seconds",
            -1,
            "server.shutdown_grace_seconds: must not be negative",
        ),
        (
            "server.response_model",
            "client",
            "server.response_model: expected one of: upstream, requested, model_id",
        ),
        ("upstream.max_connections", 0, "upstream.max_connections: must be greater than 0"),
        (
            "upstream.max_keepalive_connections",
            -1,
            "upstream.max_keepalive_connections: must not be negative",
        ),
        ("providers.p.timeouts.connect", 0, "providers.p.timeouts.connect: must be greater than 0"),
        (
            "providers.p.timeouts.idle",
            "60s",
            "providers.p.timeouts.idle: expected float, got string",
        ),
        (
            "providers.p.timeouts.total",
            True,
            "providers.p.timeouts.total: expected float, got boolean",
        ),
        ("providers.p.on_prem", "yes", "providers.p.on_prem: expected bool, got string"),
        (
            "providers.p.base_url",
            "api.openai.com/v1",
            "providers.p.base_url: expected an http(s):// URL",
        ),
        ("providers.p.base_url", "ftp://x", "providers.p.base_url: expected an http(s):// URL"),
        ("providers.p.api_key_env", ["K"], "providers.p.api_key_env: expected str, got list"),
        ("models.a.price.input", -0.5, "models.a.price.input: must not be negative"),
        ("models.a.price.output", -1, "models.a.price.output: must not be negative"),
        ("models.a.price.cached_input", -1, "models.a.price.cached_input: must not be negative"),
        ("models.a.price.input", "cheap", "models.a.price.input: expected float, got string"),
        ("models.a.name", 4, "models.a.name: expected str, got int"),
        ("models.a.provider", "nope", "models.a.provider: unknown provider 'nope' (known: p)"),
        ("plugins.disabled", "cost", "plugins.disabled: expected a list of plugin names"),
        ("plugins.disabled", ["cost", 1], "plugins.disabled: expected a list of plugin names"),
        ("routing.policies", 1, "routing.policies: expected str, got int"),
    ],
)
def test_one_problem_is_named_by_its_key_path(
    tmp_path: Path, key: str, value: Any, expected: str
) -> None:
    assert problems(_set(minimal(), key, value), tmp_path) == [expected]


def test_unknown_tier_member(tmp_path: Path) -> None:
    data = minimal(tiers={"t": ["a"], "mid": ["a", "gpt-5x"]})
    assert problems(data, tmp_path) == ["tiers.mid[1]: unknown model 'gpt-5x' (known: a, b)"]


def test_missing_provider_kind(tmp_path: Path) -> None:
    data = minimal()
    data["providers"]["p"] = {"base_url": "http://localhost:8000/v1"}
    assert problems(data, tmp_path) == ["providers.p.kind: required (for example 'openai')"]


def test_missing_model_provider(tmp_path: Path) -> None:
    data = minimal()
    data["models"]["a"] = {"name": "x"}
    assert problems(data, tmp_path) == ["models.a.provider: required"]


def test_unknown_provider_with_no_providers_at_all(tmp_path: Path) -> None:
    data = minimal(providers={})
    assert problems(data, tmp_path) == [
        "models.a.provider: unknown provider 'p'",
        "models.b.provider: unknown provider 'p'",
    ]


def test_both_api_key_env_and_api_key_file(tmp_path: Path) -> None:
    data = minimal()
    data["providers"]["p"].update(api_key_env="KEY", api_key_file="key.txt")
    assert problems(data, tmp_path) == [
        "providers.p.api_key_file: give api_key_env or api_key_file, not both"
    ]


@pytest.mark.parametrize("tier", [[], None, "a", {"a": 1}])
def test_tier_must_be_a_non_empty_list(tmp_path: Path, tier: Any) -> None:
    data = minimal(tiers={"t": ["a"], "empty": tier})
    assert problems(data, tmp_path) == ["tiers.empty: expected a non-empty list of model ids"]


def test_tier_named_like_a_model(tmp_path: Path) -> None:
    data = minimal(tiers={"t": ["a"], "b": ["a"]})
    assert problems(data, tmp_path) == ["tiers.b: a tier cannot share its name with a model"]


def test_tier_named_auto(tmp_path: Path) -> None:
    data = minimal(tiers={"t": ["a"], "auto": ["a"]})
    assert problems(data, tmp_path) == [
        "tiers.auto: 'auto' is reserved: it means the routing decision"
    ]


def test_default_tier_unknown(tmp_path: Path) -> None:
    data = minimal(tiers={"t": ["a"], "u": ["b"]}, routing={"default_tier": "nope"})
    assert problems(data, tmp_path) == ["routing.default_tier: unknown tier 'nope' (known: t, u)"]


def test_default_tier_missing(tmp_path: Path) -> None:
    data = minimal(routing={})
    assert problems(data, tmp_path) == ["routing.default_tier: required (known: t)"]


def test_no_tiers_at_all(tmp_path: Path) -> None:
    data = minimal(routing={})
    del data["tiers"]
    assert problems(data, tmp_path) == ["tiers: at least one tier is required"]


def test_empty_document_reports_the_missing_tiers(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text("# nothing yet\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert [str(p) for p in info.value.problems] == ["tiers: at least one tier is required"]


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    assert problems(["server"], tmp_path)[0] == "expected a mapping, got list"


def test_many_problems_are_reported_at_once(tmp_path: Path) -> None:
    data = {
        "colour": "blue",
        "server": {"port": "http", "host": True},
        "providers": {
            "p": {
                "kind": "openai",
                "base_url": "localhost",
                "api_key_env": "K",
                "api_key_file": "f",
            },
            "q": {"on_prem": 1},
        },
        "models": {
            "a": {"provider": "p", "price": {"input": -1}},
            "b": {"provider": "zz"},
        },
        "tiers": {"mid": ["a", "gpt-5x"], "a": ["a"], "auto": ["b"], "none": []},
        "routing": {"default_tier": "top"},
        "plugins": {"disabled": "x"},
    }

    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=tmp_path)

    reported = [str(problem) for problem in info.value.problems]
    assert reported == [
        f"colour: unknown key (expected one of: {TOP_KEYS})",
        "server.host: expected str, got boolean",
        "server.port: expected int, got string",
        "providers.p.api_key_file: give api_key_env or api_key_file, not both",
        "providers.p.base_url: expected an http(s):// URL",
        "providers.q.kind: required (for example 'openai')",
        "providers.q.on_prem: expected bool, got int",
        "models.a.price.input: must not be negative",
        "models.b.provider: unknown provider 'zz' (known: p, q)",
        "tiers.mid[1]: unknown model 'gpt-5x' (known: a, b)",
        "tiers.a: a tier cannot share its name with a model",
        "tiers.auto: 'auto' is reserved: it means the routing decision",
        "tiers.none: expected a non-empty list of model ids",
        "routing.default_tier: unknown tier 'top' (known: a, auto, mid)",
        "plugins.disabled: expected a list of plugin names",
    ]
    message = str(info.value)
    assert message.startswith("15 configuration error(s):\n")
    for line in reported:
        assert f"\n  {line}" in message


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text("server:\n  port: 8787\n  host: [1\n")

    with pytest.raises(ConfigError) as info:
        load_settings(config)

    (problem,) = info.value.problems
    assert problem.path == ""
    assert str(problem).startswith("line 4, column 1: invalid YAML: ")
    assert info.value.source == str(config)
    assert str(info.value).startswith(f"{config}: 1 configuration error(s):\n")


def test_tab_indentation_is_invalid_yaml_with_position(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text("server:\n\tport: 1\n")

    with pytest.raises(ConfigError) as info:
        load_settings(config)

    assert str(info.value.problems[0]).startswith("line 2, column 1: invalid YAML: ")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(missing)
    assert [str(p) for p in info.value.problems] == [
        f"cannot read {missing}: No such file or directory"
    ]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert [str(p) for p in info.value.problems] == [f"cannot read {tmp_path}: Is a directory"]


def test_load_settings_names_the_file_in_the_error(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text("server: {port: 99999}\ntiers: {t: [x]}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert info.value.source == str(config)
    assert str(info.value).startswith(f"{config}: ")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_bytes(b"server:\n  host: \xff\xfe\n")
    with pytest.raises(ConfigError):
        load_settings(config)


def test_non_string_tier_member_is_a_config_error(tmp_path: Path) -> None:
    data = minimal(tiers={"t": [["a"]]})
    assert problems(data, tmp_path) == ["tiers.t[0]: expected a model id, got list"]


def test_model_named_auto_is_rejected(tmp_path: Path) -> None:
    data = minimal(
        models={"a": {"provider": "p"}, "b": {"provider": "p"}, "auto": {"provider": "p"}}
    )
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=tmp_path)
    assert [p.path for p in info.value.problems] == ["models.auto"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("providers.p.kind", 5, "providers.p.kind: expected str, got int"),
        ("models.a.provider", 7, "models.a.provider: expected str, got int"),
    ],
)
def test_wrong_type_of_required_key_is_reported_once(
    tmp_path: Path, key: str, value: Any, expected: str
) -> None:
    assert problems(_set(minimal(), key, value), tmp_path) == [expected]


@pytest.mark.parametrize("key", ["server.keepalive_seconds", "upstream.keepalive_expiry"])
def test_negative_keepalive_is_rejected(tmp_path: Path, key: str) -> None:
    assert [p.split(":")[0] for p in problems(_set(minimal(), key, -1), tmp_path)] == [key]


# ProviderSettings.api_key()


def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_TEST_KEY", "sk-env-123")
    provider = ProviderSettings(name="openai", kind="openai", api_key_env="SIDECAR_TEST_KEY")
    assert provider.api_key() == "sk-env-123"


def test_api_key_is_read_when_asked_not_when_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIDECAR_TEST_KEY", raising=False)
    data = minimal()
    data["providers"]["p"]["api_key_env"] = "SIDECAR_TEST_KEY"
    provider = parse_settings(data, base_dir=tmp_path).providers["p"]
    monkeypatch.setenv("SIDECAR_TEST_KEY", "sk-later")
    assert provider.api_key() == "sk-later"


def test_api_key_from_file_is_stripped(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("\n  sk-file-456 \n\n")
    provider = ProviderSettings(name="p", kind="openai", api_key_file=key)
    assert provider.api_key() == "sk-file-456"


@pytest.mark.parametrize("value", [None, ""])
def test_api_key_env_missing(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    secret = "sk-secret-must-not-leak"
    monkeypatch.setenv("OTHER_KEY", secret)
    if value is None:
        monkeypatch.delenv("SIDECAR_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("SIDECAR_TEST_KEY", value)
    provider = ProviderSettings(name="openai", kind="openai", api_key_env="SIDECAR_TEST_KEY")

    with pytest.raises(ConfigError) as info:
        provider.api_key()

    assert [str(p) for p in info.value.problems] == [
        "providers.openai.api_key_env: environment variable 'SIDECAR_TEST_KEY' is not set"
    ]
    assert secret not in str(info.value)


def test_api_key_file_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "no-key"
    provider = ProviderSettings(name="p", kind="openai", api_key_file=missing)
    with pytest.raises(ConfigError) as info:
        provider.api_key()
    assert [str(p) for p in info.value.problems] == [
        f"providers.p.api_key_file: cannot read {missing}: No such file or directory"
    ]


# config_path


def test_config_path_explicit_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_CONFIG", "/from/env.yaml")
    assert config_path("/explicit.yaml") == Path("/explicit.yaml")


def test_config_path_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_CONFIG", "/from/env.yaml")
    assert config_path(None) == Path("/from/env.yaml")


@pytest.mark.parametrize("env", [None, ""])
def test_config_path_default(monkeypatch: pytest.MonkeyPatch, env: str | None) -> None:
    if env is None:
        monkeypatch.delenv("SIDECAR_CONFIG", raising=False)
    else:
        monkeypatch.setenv("SIDECAR_CONFIG", env)
    assert config_path(None) == Path("sidecar.yaml")
    assert DEFAULT_CONFIG == "sidecar.yaml"


def test_model_listed_twice_in_a_tier(tmp_path: Path) -> None:
    assert problems(minimal(tiers={"t": ["a", "b", "a"]}), tmp_path) == [
        "tiers.t[2]: model 'a' is listed twice"
    ]


def test_keepalive_pool_larger_than_the_pool(tmp_path: Path) -> None:
    data = minimal(upstream={"max_connections": 4, "max_keepalive_connections": 8})
    assert problems(data, tmp_path) == [
        "upstream.max_keepalive_connections: must not exceed max_connections (4)"
    ]


def test_null_disabled_means_none(tmp_path: Path) -> None:
    settings = parse_settings(minimal(plugins={"disabled": None}), base_dir=tmp_path)
    assert settings.plugins.disabled == ()


def test_empty_key_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("\n")
    data = minimal()
    data["providers"]["p"]["api_key_file"] = "key"
    settings = parse_settings(data, base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        settings.providers["p"].api_key()
    assert [str(p) for p in info.value.problems] == [
        f"providers.p.api_key_file: {tmp_path / 'key'} is empty"
    ]


def test_relative_config_path_resolves_to_an_absolute_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sidecar.yaml").write_text(yaml.safe_dump(minimal()))
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("sidecar.yaml"))
    assert settings.routing.policies == tmp_path / "policies"


def test_symlinked_config_resolves_beside_the_link(tmp_path: Path) -> None:
    """A Kubernetes ConfigMap mounts files as links into a hidden `..data` directory."""
    hidden = tmp_path / "..2026_11_27"
    hidden.mkdir()
    (hidden / "sidecar.yaml").write_text(yaml.safe_dump(minimal()))
    (tmp_path / "sidecar.yaml").symlink_to(hidden / "sidecar.yaml")
    settings = load_settings(tmp_path / "sidecar.yaml")
    assert settings.routing.policies == tmp_path / "policies"


def test_resilience_settings(tmp_path: Path) -> None:
    data = minimal(
        routing={
            "default_tier": "t",
            "max_attempts": 5,
            "deadline_seconds": 30,
            "sensitive_on_prem_only": False,
        },
        breaker={"failure_threshold": 2, "failure_rate": 0.25, "cooldown_seconds": 1},
    )
    settings = parse_settings(data, base_dir=tmp_path)
    assert (settings.routing.max_attempts, settings.routing.deadline_seconds) == (5, 30.0)
    assert settings.routing.sensitive_on_prem_only is False
    assert (settings.breaker.failure_threshold, settings.breaker.failure_rate) == (2, 0.25)
    assert settings.breaker.cooldown_seconds == 1.0
    assert problems(minimal(breaker={"failure_rate": 1.5, "windows": 3}), tmp_path) == [
        "breaker.windows: unknown key (expected one of: cooldown_seconds, failure_rate, "
        "failure_threshold, min_samples, window)",
        "breaker.failure_rate: expected a number above 0 and at most 1",
    ]
