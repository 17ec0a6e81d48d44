"""The `sidecar` command as an operator runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from ..fake_upstream import FakeUpstream, sse_reply
from ..support import DEMO_CONFIG, ServerThread, fixture_bytes
from .conftest import API_KEY, API_KEY_ENV, sdk, sidecar_config
from .processes import run_cli, serving, write_config

HELLO = [{"role": "user", "content": "hi"}]


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("sidecar ")


def test_check_accepts_the_example_config() -> None:
    result = run_cli("check")
    assert result.returncode == 0, result.stderr
    assert "sidecar.yaml: ok (2 providers, 4 models, 4 tiers)" in result.stdout


def test_check_says_where_telemetry_goes_and_names_a_wrong_variable() -> None:
    quiet = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_TRACES_EXPORTER": ""}
    assert "telemetry: off (no OTEL_* variable" in run_cli("check", env=quiet).stdout
    env = {**quiet, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        "telemetry: spans: OTLP http/protobuf to http://127.0.0.1:4318/v1/traces; "
        "metrics: OTLP http/protobuf to http://127.0.0.1:4318/v1/metrics"
    ) in result.stdout
    result = run_cli("check", env={**env, "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert "1 configuration error(s)" in result.stderr  # one variable, one problem
    assert "OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' is not a positive number" in result.stderr


def test_check_lists_every_problem_with_its_key_path(tmp_path: Path) -> None:
    config = sidecar_config("http://127.0.0.1:9")
    config["tiers"]["mid"] = ["small", "gpt-5x"]
    config["server"] = {"port": "eighty"}
    config["providers"]["fake"]["kind"] = "openia"
    config["providers"]["local"]["colour"] = "blue"
    result = run_cli("check", "--config", str(write_config(tmp_path, config)))
    assert result.returncode == 2
    assert "tiers.mid[1]: unknown model 'gpt-5x'" in result.stderr
    assert "server.port: expected int, got string" in result.stderr
    assert "2 configuration error(s)" in result.stderr  # structure first, then plugin kinds


def test_check_reports_unknown_provider_kinds_and_keys(tmp_path: Path) -> None:
    config = sidecar_config("http://127.0.0.1:9")
    config["providers"]["fake"]["kind"] = "openia"
    config["providers"]["local"]["colour"] = "blue"
    result = run_cli("check", "--config", str(write_config(tmp_path, config)))
    assert result.returncode == 2
    # Known kinds: the built-in ones, and those of plugin packages installed beside them.
    match = re.search(
        r"providers\.fake\.kind: unknown provider kind 'openia' \(known: (.*)\)", result.stderr
    )
    assert match is not None, result.stderr
    assert {"anthropic", "demo", "gemini", "openai"} <= set(match.group(1).split(", "))
    assert "providers.local.colour: unknown key" in result.stderr


def test_check_warns_about_a_missing_secret_and_serve_refuses(tmp_path: Path) -> None:
    path = write_config(tmp_path, sidecar_config("http://127.0.0.1:9"))
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    check = subprocess.run(
        [sys.executable, "-m", "sidecar", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert check.returncode == 0
    assert (
        f"providers.fake.api_key_env: environment variable '{API_KEY_ENV}' is not set"
        in check.stderr
    )
    serve = subprocess.run(
        [sys.executable, "-m", "sidecar", "serve", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert serve.returncode == 2
    assert "providers.fake.api_key_env" in serve.stderr


def test_config_from_the_environment_variable(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"tiers": {}})
    result = run_cli("check", env={"SIDECAR_CONFIG": str(path)})
    assert result.returncode == 2
    assert "tiers: at least one tier is required" in result.stderr


def test_serve_the_example_config_offline() -> None:
    with serving() as sidecar:
        with sdk(sidecar) as client:
            raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
        assert raw.headers["x-sidecar-tier"] == "mid"
        assert "demo" in (raw.parse().choices[0].message.content or "")
        assert sidecar.url.startswith("http://127.0.0.1:")


BROKEN_PLUGIN = "raise RuntimeError('this plugin is broken')\n"


def test_broken_plugin_is_reported_and_the_sidecar_answers(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(BROKEN_PLUGIN)
    with serving("--plugins-dir", str(plugins)) as sidecar:
        failed = httpx.get(f"{sidecar.url}/-/plugins").json()["failed"]
        with sdk(sidecar) as client:
            answer = client.chat.completions.create(model="light", messages=HELLO)
    assert failed == [
        {"plugin": "broken", "stage": "import", "error": "RuntimeError: this plugin is broken"}
    ]
    assert answer.choices[0].message.content
    assert any("plugin broken failed at import" in line for line in sidecar.log)

    listing = run_cli("plugins", "--plugins-dir", str(plugins))
    assert listing.returncode == 1
    assert "sidecar.providers.openai  (built-in)" in listing.stdout
    assert "broken  FAILED at import: RuntimeError: this plugin is broken" in listing.stdout


def test_sigterm_lets_an_in_flight_stream_finish(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> None:
    _, server = upstream_server
    path = write_config(tmp_path, sidecar_config(server.url))
    upstream.queue(sse_reply(fixture_bytes("openai/chat_completion_stream.sse"), delay=0.2))
    with serving("--config", str(path), env={API_KEY_ENV: API_KEY}) as sidecar:
        with sdk(sidecar) as client:
            stream = client.chat.completions.create(model="auto", messages=HELLO, stream=True)
            first = next(iter(stream))
            sidecar.popen.send_signal(signal.SIGTERM)
            rest = list(stream)
        # uvicorn re-raises the signal once shut down, as a process killed by it would end.
        assert sidecar.popen.wait(timeout=20) in (0, -signal.SIGTERM)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in [first, *rest])
    assert text == "Hello! How can I help?"


@pytest.mark.parametrize("command", ["serve", "check", "plugins"])
def test_every_command_takes_config(command: str) -> None:
    result = run_cli(command, "--help")
    assert "--config" in result.stdout


LONG_POLICY = (
    "description: Long prompts\nwhen: request.tokens > 50\nroute: {tier: frontier}\n"
    "fallback: [light]\n"
)
TEAM_POLICY = (
    'when: \'"x-team" in request.headers && request.headers["x-team"] == "secure"\'\n'
    "route: {tier: onprem}\nconfidential: true\n"
)


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, DEMO_CONFIG)
    (tmp_path / "policies" / "10-team.yaml").write_text(TEAM_POLICY)
    (tmp_path / "policies" / "30-long.yaml").write_text(LONG_POLICY)
    return path


def test_check_validates_policies_too(demo_config: Path, tmp_path: Path) -> None:
    good = run_cli("check", "--config", str(demo_config))
    assert good.returncode == 0, good.stderr
    assert "3 policies" in good.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "10-a.yaml").write_text("when: request.tokenz > 1\nroute: {tier: nowhere}\n")
    result = run_cli("check", "--config", str(demo_config), "--policies", str(broken))
    assert result.returncode == 2
    assert "10-a.yaml:1:7: unknown request field 'tokenz'" in result.stderr
    assert "10-a.yaml:2:15: unknown tier 'nowhere'" in result.stderr


def test_explain_a_prompt(demo_config: Path) -> None:
    result = run_cli("explain", "--config", str(demo_config), "--prompt", "word " * 100)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  => 30-long: true" in lines
    assert "     10-team: false" in lines
    assert "route: tier frontier, then light" in lines
    assert lines[-1] == "targets: big (cloud), small (cloud)"


def test_explain_a_request_file_with_headers_as_json(demo_config: Path, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text('{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}')
    result = run_cli(
        "explain",
        "--config",
        str(demo_config),
        "--request",
        str(request),
        "--header",
        "X-Team=secure",
        "--header",
        "Authorization=Bearer sk-secret",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    explanation = json.loads(result.stdout)
    assert explanation["decision"]["policy"] == "10-team"
    assert explanation["decision"]["confidential"] is True
    assert explanation["request"]["headers"] == {"x-team": "secure"}  # credentials never shown
    assert "sk-secret" not in result.stdout


def test_policy_test_cases_pass_and_fail_with_a_diff(demo_config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "name": "short goes light",
                        "prompt": "hi",
                        "expect": {"tier": "light", "policy": None},
                    },
                    {
                        "name": "long goes frontier",
                        "prompt": "word " * 100,
                        "expect": {"tier": "frontier", "model": "big"},
                    },
                    {
                        "name": "secure team stays home",
                        "request": {
                            "model": "auto",
                            "messages": [{"role": "user", "content": "x"}],
                        },
                        "headers": {"x-team": "secure"},
                        "expect": {"tier": "onprem", "confidential": True},
                    },
                    {"name": "wrong on purpose", "prompt": "hi", "expect": {"tier": "frontier"}},
                ]
            }
        )
    )
    result = run_cli("test", "--config", str(demo_config), str(cases))
    assert result.returncode == 1
    assert "PASS cases.yaml: short goes light" in result.stdout
    assert "PASS cases.yaml: secure team stays home" in result.stdout
    assert (
        "FAIL cases.yaml: wrong on purpose\n     tier: expected 'frontier', got 'light'"
        in result.stdout
    )
    assert result.stdout.strip().endswith("3 passed, 1 failed")


def test_policy_test_rejects_a_malformed_cases_file(demo_config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - prompt: hi\n    expect: {tierr: light}\n")
    result = run_cli("test", "--config", str(demo_config), str(cases))
    assert result.returncode == 2
    assert "cases[0]: unknown expectation 'tierr'" in result.stderr


def test_explain_endpoint_matches_the_cli(demo_config: Path) -> None:
    with serving("--config", str(demo_config)) as sidecar:
        body = {"model": "auto", "messages": [{"role": "user", "content": "word " * 100}]}
        explained = httpx.post(f"{sidecar.url}/-/explain", json=body).json()
        bad = httpx.post(f"{sidecar.url}/-/explain", content=b"{")
    assert explained["decision"]["policy"] == "30-long"
    assert [t["model"] for t in explained["targets"]] == ["big", "small"]
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_json"


def test_the_example_policy_cases_pass() -> None:
    result = run_cli("test", "policies/tests/routing.yaml")
    assert result.returncode == 0, result.stdout
    assert " 0 failed" in result.stdout


def test_check_warns_about_a_model_without_a_price(tmp_path: Path) -> None:
    config = {
        **DEMO_CONFIG,
        "models": {
            "small": {"provider": "cloud", "name": "gpt-4o-mini"},  # a bundled list price
            "big": {"provider": "cloud", "name": "house-model-v2"},  # unknown: warned
            "box": {"provider": "local"},  # on premises: free is expected
        },
    }
    result = run_cli("check", "--config", str(write_config(tmp_path, config)))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if ".price:" in line]
    assert warnings == [
        "warning: models.big.price: not configured, and 'house-model-v2' is not a model with "
        "a known list price: its requests count as free in cost and savings"
    ]


def _native_line(env: dict[str, str]) -> str:
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stderr
    return next(x for x in result.stdout.splitlines() if x.startswith("native: "))


def test_check_says_which_native_extensions_are_in_use() -> None:
    line = _native_line({"SIDECAR_PURE_PYTHON": ""})
    assert "tokens classifier" in line  # in use, or named as running in pure Python
    line = _native_line({"SIDECAR_PURE_PYTHON": "1"})
    assert line == "native: pure Python for all (SIDECAR_PURE_PYTHON is set)"
