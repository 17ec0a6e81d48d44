"""The policy loader and evaluation, on every CEL engine installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar import cel
from sidecar.activation import VARIABLES, config_maps, sample_request
from sidecar.policies import PolicyError, PolicyFile, PolicySet, build_policy_set, read_directory
from sidecar.settings import Settings, parse_settings

from .support import DEMO_CONFIG

ENGINES = cel.available_engines()
SIGNALS = {"tokens": {"total": "int"}, "task": {"kind": "string", "complexity": "double"}}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return parse_settings(
        DEMO_CONFIG,
        base_dir=tmp_path,
    )


def activation(settings: Settings, **request: Any) -> dict[str, Any]:
    tiers, models = config_maps(settings)
    return {
        "request": {**sample_request(), **request},
        "signals": {"tokens": {"total": 10}, "task": {"kind": "code", "complexity": 0.5}},
        "tiers": tiers,
        "models": models,
    }


def load(
    settings: Settings, engine: str, functions: dict[str, Any] | None = None, **files: str
) -> PolicySet:
    environment = cel.Environment(engine, VARIABLES, functions or {})
    policy_files = [PolicyFile(f"{name}.yaml", text) for name, text in files.items()]
    sample = environment.prepare(activation(settings))
    return build_policy_set(policy_files, settings, environment, [sample], SIGNALS)


def problems(settings: Settings, engine: str, **files: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load(settings, engine, **files)
    return [str(problem) for problem in info.value.problems]


def test_first_match_in_file_name_order(settings: Settings, engine: str) -> None:
    policies = load(
        settings,
        engine,
        **{
            "30-code": "when: signals.task.kind == 'code'\nroute: {tier: frontier}\n",
            "10-long": "when: request.tokens > 1000\nroute: {tier: light}\nfallback: [frontier]\n",
            "20-never": "when: request.tokens < 0\nroute: {model: box}\n",
        },
    )
    assert [p.name for p in policies.policies] == ["10-long", "20-never", "30-code"]
    verdict = policies.first_match(activation(settings))
    assert verdict.policy is not None
    assert verdict.policy.name == "30-code"
    long = policies.first_match(activation(settings, tokens=5000))
    assert long.policy is not None
    assert (long.policy.name, long.policy.fallback) == ("10-long", ("frontier",))


def test_no_match(settings: Settings, engine: str) -> None:
    policies = load(settings, engine, a="when: request.stream\nroute: {tier: frontier}\n")
    assert policies.first_match(activation(settings)).policy is None


def test_disabled_policy_is_skipped(settings: Settings, engine: str) -> None:
    policies = load(
        settings, engine, a="when: request.tokens > 0\nroute: {tier: frontier}\nenabled: false\n"
    )
    assert policies.first_match(activation(settings)).policy is None
    assert policies.explain(activation(settings))[0][1] is None


def test_a_failing_policy_does_not_match_and_the_next_decides(
    settings: Settings, engine: str
) -> None:
    policies = load(
        settings,
        engine,
        a="when: 100 / request.tokens > 1\nroute: {tier: frontier}\n",
        b="when: request.tokens >= 0\nroute: {tier: onprem}\n",
    )
    verdict = policies.first_match(activation(settings, tokens=0))  # division by zero
    assert verdict.policy is not None
    assert verdict.policy.name == "b"
    assert [name for name, _ in verdict.errors] == ["a"]
    assert not verdict.failed_closed
    small = policies.first_match(activation(settings, tokens=3))
    assert small.policy is not None
    assert small.policy.name == "a"
    assert small.errors == ()


def test_a_when_failing_on_a_typical_request_is_rejected_with_a_hint(
    settings: Settings, engine: str
) -> None:
    (found,) = problems(
        settings, engine, a='when: request.headers["x-team"] == "ml"\nroute: {tier: light}\n'
    )
    assert found.startswith("a.yaml:1:7: `when` failed on a sample request: ")
    assert '"key" in map' in found


def test_a_failing_confidential_policy_fails_closed(settings: Settings, engine: str) -> None:
    policies = load(
        settings,
        engine,
        a="when: signals.task.kind == 'secret'\nroute: {tier: onprem}\nconfidential: true\n",
    )
    missing_signal = activation(settings)
    del missing_signal["signals"]["task"]  # the classifier failed: its signal is missing
    verdict = policies.first_match(missing_signal)
    assert verdict.policy is not None
    assert verdict.policy.confidential
    assert verdict.failed_closed


def test_plugin_functions(settings: Settings, engine: str) -> None:
    def contains_any(text: str, words: list[str]) -> bool:
        return any(word in text for word in words)

    policies = load(
        settings,
        engine,
        {"contains_any": contains_any},
        a='when: contains_any(request.text, ["invoice", "refund"])\nroute: {tier: frontier}\n',
    )
    assert policies.first_match(activation(settings, text="a refund please")).policy is not None
    assert policies.first_match(activation(settings, text="hello")).policy is None


def test_comment_in_when_does_not_swallow_the_next_policy(settings: Settings, engine: str) -> None:
    policies = load(
        settings,
        engine,
        a="when: request.stream // streams only\nroute: {tier: frontier}\n",
        b="when: request.tokens > 0\nroute: {tier: onprem}\n",
    )
    verdict = policies.first_match(activation(settings))
    assert verdict.policy is not None
    assert verdict.policy.name == "b"


def test_many_policies_still_one_program(settings: Settings, engine: str) -> None:
    files = {
        f"{i:02d}": f"when: request.tokens == {i}\nroute: {{tier: frontier}}\n" for i in range(40)
    }
    policies = load(settings, engine, **files)
    assert len(policies.chunks) == 4
    assert all(program is not None for _, program in policies.chunks)
    verdict = policies.first_match(activation(settings, tokens=39))
    assert verdict.policy is not None
    assert verdict.policy.name == "39"


def test_the_activation_is_converted_once_and_only_for_a_second_program(
    settings: Settings, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_chunk = load(settings, engine, a="when: request.tokens == 1\nroute: {tier: light}\n")
    files = {
        f"{i:02d}": f"when: request.tokens == {i}\nroute: {{tier: frontier}}\n" for i in range(40)
    }
    four_chunks = load(settings, engine, **files)
    failing = load(
        settings,
        engine,
        a="when: 100 / request.tokens > 1\nroute: {tier: frontier}\n",
        b="when: request.tokens >= 0\nroute: {tier: onprem}\n",
    )
    conversions = 0
    prepare = cel.Environment.prepare

    def counted(self: cel.Environment, data: Any) -> cel.Prepared:
        nonlocal conversions
        conversions += 1
        return prepare(self, data)

    monkeypatch.setattr(cel.Environment, "prepare", counted)
    verdict = one_chunk.first_match(activation(settings, tokens=1))
    assert verdict.policy is not None
    assert verdict.policy.name == "a"
    assert conversions == 0  # one program: it reads the dicts as they are
    verdict = four_chunks.first_match(activation(settings, tokens=39))
    assert verdict.policy is not None
    assert verdict.policy.name == "39"
    assert conversions == 1  # four programs: converted once, before the first
    verdict = failing.first_match(activation(settings, tokens=0))
    assert verdict.policy is not None
    assert verdict.policy.name == "b"
    assert conversions == 2  # the chunk failed: its policies one by one, converted once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("when: [\n", "a.yaml:2:1: invalid YAML: expected the node content"),
        (
            "- when: true\n",
            "a.yaml:1:1: a policy file must be a YAML mapping with `when` and `route`",
        ),
        (
            "route: {tier: light}\n",
            "a.yaml:1:1: missing required key `when` (a CEL expression returning a bool)",
        ),
        (
            "when: request.stream\n",
            "a.yaml:1:1: missing required key `route` ({tier: NAME} or {model: ID})",
        ),
        (
            "when: request.stream\nroute: {tier: light}\npriority: 3\n",
            "a.yaml:3:1: unknown key 'priority' (expected one of: description, when, route, "
            "fallback, confidential, enabled)",
        ),
        (
            "when: request.stream\nroute: {tier: mid}\n",
            "a.yaml:2:15: unknown tier 'mid' (known: light, frontier, onprem)",
        ),
        (
            "when: request.stream\nroute: {model: gpt-5x}\n",
            "a.yaml:2:16: unknown model 'gpt-5x' (known: small, big, box)",
        ),
        (
            "when: request.stream\nroute: {tier: light, model: big}\n",
            "a.yaml:2:8: `route` needs exactly one of: tier, model, requested",
        ),
        (
            "when: request.stream\nroute: light\n",
            "a.yaml:2:8: `route` must be a mapping: {tier: NAME}, {model: ID} or {requested: true}",
        ),
        (
            "when: request.stream\nroute: {requested: false}\n",
            "a.yaml:2:20: `requested` must be true",
        ),
        (
            "when: request.stream\nroute: {tier: light}\nfallback: [frontier, mid]\n",
            "a.yaml:3:22: unknown tier 'mid' in fallback (known: light, frontier, onprem)",
        ),
        (
            "when: request.stream\nroute: {tier: light}\nconfidential: yes please\n",
            "a.yaml:3:15: `confidential` must be true or false",
        ),
        (
            "when: ''\nroute: {tier: light}\n",
            "a.yaml:1:7: `when` must be a CEL expression (a string)",
        ),
        (
            "when: request.tokenz > 10\nroute: {tier: light}\n",
            "a.yaml:1:7: unknown request field 'tokenz' (known: model, stream, message_count, "
            "tokens, max_tokens, has_tools, has_images, user, text, headers)",
        ),
        (
            "when: signals.taks.kind == 'x'\nroute: {tier: light}\n",
            "a.yaml:1:7: unknown classifier 'taks' in signals (known: task, tokens)",
        ),
        (
            "when: request.stream || signals.task.knd == 'x'\nroute: {tier: light}\n",
            "a.yaml:1:25: classifier 'task' has no output 'knd' (it has: kind, complexity)",
        ),
        (
            "when: request.tokens\nroute: {tier: light}\n",
            "a.yaml:1:7: `when` must be a bool expression, it returned int",
        ),
        (
            "when: request.tokens / 0 > 1\nroute: {tier: light}\n",
            "a.yaml:1:7: `when` failed on a sample request: ",
        ),
        (
            "when: when\nwhen: request.stream\nroute: {tier: light}\n",
            "a.yaml:2:1: duplicate key 'when'",
        ),
    ],
)
def test_loader_errors_name_file_line_and_column(
    settings: Settings, engine: str, text: str, expected: str
) -> None:
    found = problems(settings, engine, a=text)
    assert any(problem.startswith(expected) for problem in found), found


@pytest.mark.parametrize(
    ("when", "column"),
    [
        ("request.stream &&", None),  # engines point at different places at the end of input
        ("request.stream && nope(1)", None),
        ("request.stream == ", None),
    ],
)
def test_cel_compile_errors_point_into_the_file(
    settings: Settings, engine: str, when: str, column: int | None
) -> None:
    (found,) = problems(
        settings, engine, a=f"description: x\nwhen: {when}\nroute: {{tier: light}}\n"
    )
    assert found.startswith("a.yaml:2:")
    assert "invalid CEL" in found


def test_cel_error_in_a_block_scalar_points_at_its_line(settings: Settings, engine: str) -> None:
    text = "when: >\n  request.stream\n  && nope(1)\nroute: {tier: light}\n"
    (found,) = problems(settings, engine, a=text)
    assert found.startswith("a.yaml:3:") or found.startswith("a.yaml:2:"), found


def test_every_problem_in_every_file_is_listed(settings: Settings, engine: str) -> None:
    found = problems(
        settings,
        engine,
        a="when: request.stream\nroute: {tier: nope}\n",
        b="when: request.stream &&\nroute: {tier: light}\n",
        c="when: request.stream\nroute: {tier: light}\n",
    )
    assert [problem.split(":")[0] for problem in found] == ["a.yaml", "b.yaml"]


def test_read_directory_skips_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "20-b.yaml").write_text("b")
    (tmp_path / "10-a.yml").write_text("a")
    (tmp_path / ".10-a.yaml.swp").write_text("x")
    (tmp_path / "README.md").write_text("x")
    data = tmp_path / "..2026_11_27"
    data.mkdir()
    (data / "30-c.yaml").write_text("c")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "30-c.yaml").symlink_to("..data/30-c.yaml")
    assert [f.name for f in read_directory(tmp_path)] == ["10-a.yml", "20-b.yaml", "30-c.yaml"]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy directory does not exist"):
        read_directory(tmp_path / "nope")


def test_version_changes_with_content(settings: Settings, engine: str) -> None:
    one = load(settings, engine, a="when: request.stream\nroute: {tier: light}\n")
    same = load(settings, engine, a="when: request.stream\nroute: {tier: light}\n")
    other = load(settings, engine, a="when: request.stream\nroute: {tier: frontier}\n")
    assert one.version == same.version != other.version


def test_explain_lists_every_result(settings: Settings, engine: str) -> None:
    policies = load(
        settings,
        engine,
        a="when: 100 / request.tokens > 1\nroute: {tier: frontier}\n",
        b="when: request.stream\nroute: {tier: frontier}\n",
        c="when: request.tokens >= 0\nroute: {tier: frontier}\n",
    )
    results = [(p.name, r) for p, r in policies.explain(activation(settings, tokens=0))]
    assert results[1:] == [("b", False), ("c", True)]
    assert str(results[0][1]).startswith("error: ")
    json.dumps(results)


def test_the_loader_warns_about_expressions_the_engines_disagree_on(settings: Settings) -> None:
    policies = load(settings, "python", a="when: request.stream || 1 < 1.5\nroute: {tier: light}\n")
    assert len(policies.warnings) == 1
    assert policies.warnings[0].startswith("a.yaml:1: ")
