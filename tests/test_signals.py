"""Running classifiers: isolation, the time budget, keyword lists from the configuration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar.classifier import Prompt
from sidecar.classifiers.keywords import KeywordsClassifier
from sidecar.errors import ConfigError
from sidecar.plugins import load_plugins
from sidecar.settings import parse_settings
from sidecar.signals import Signals, collect_classifiers

BASE: dict[str, Any] = {
    "providers": {"p": {"kind": "demo"}},
    "models": {"m": {"provider": "p"}},
    "tiers": {"t": ["m"]},
    "routing": {"default_tier": "t"},
}


def prompt(text: str) -> Prompt:
    return Prompt.from_messages([{"role": "user", "content": text}])


class Fixed:
    name = "fixed"
    outputs: ClassVar = {"value": "int"}

    def classify(self, prompt: Prompt) -> dict[str, int]:
        return {"value": 1}


class Slow:
    name = "slow"
    outputs: ClassVar = {"value": "int"}

    def classify(self, prompt: Prompt) -> dict[str, int]:
        time.sleep(0.02)
        return {"value": 2}


class Raises:
    name = "raises"
    outputs: ClassVar = {"value": "int"}

    def classify(self, prompt: Prompt) -> dict[str, int]:
        raise ValueError("bug")


def test_a_slow_or_failing_classifier_loses_only_its_own_signal() -> None:
    signals = Signals((Fixed(), Slow(), Raises()), budget_s=0.005)
    found, failed = signals.run(prompt("hi"))
    assert found == {"fixed": {"value": 1}}
    assert failed == ["slow", "raises"]
    assert signals.failures == {"slow": 1, "raises": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Please review this CONTRACT today", {"legal": True, "money": False}),
        ("a contractor came by", {"legal": False, "money": False}),  # whole words only
        ("file the lawsuit.", {"legal": True, "money": False}),
        ("send the non-disclosure agreement and the invoice", {"legal": True, "money": True}),
        ("contracts", {"legal": False, "money": False}),
        ("", {"legal": False, "money": False}),
    ],
)
def test_keyword_lists(text: str, expected: dict[str, bool]) -> None:
    classifier = KeywordsClassifier(
        {"legal": ("contract", "Lawsuit", "non-disclosure agreement"), "money": ("invoice",)}
    )
    assert classifier.outputs == {"legal": "bool", "money": "bool"}
    assert classifier.classify(prompt(text)) == expected


def test_keywords_come_from_the_configuration(tmp_path: Path) -> None:
    settings = parse_settings(
        {**BASE, "classifiers": {"budget_ms": 2, "keywords": {"legal": ["contract"]}}},
        base_dir=tmp_path,
    )
    signals = collect_classifiers(load_plugins(), settings)
    assert signals.budget_s == 0.002
    assert signals.outputs["keywords"] == {"legal": "bool"}
    no_lists = collect_classifiers(load_plugins(), parse_settings(BASE, base_dir=tmp_path))
    assert "keywords" not in no_lists.outputs


@pytest.mark.parametrize(
    ("classifiers", "problem"),
    [
        ({"keywords": {"legal": []}}, "classifiers.keywords.legal: expected a non-empty list"),
        ({"keywords": {"legal": ["x", ""]}}, "classifiers.keywords.legal: every entry must be"),
        ({"keywords": {"le-gal": ["x"]}}, "classifiers.keywords.le-gal: a keyword list's name"),
        ({"budget_ms": 0}, "classifiers.budget_ms: must be greater than 0"),
        ({"budgetms": 1}, "classifiers.budgetms: unknown key"),
    ],
)
def test_bad_classifier_settings_name_the_key(
    tmp_path: Path, classifiers: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({**BASE, "classifiers": classifiers}, base_dir=tmp_path)
    assert any(str(p).startswith(problem) for p in info.value.problems), info.value.problems
