"""`RequestedModelRouter`: `auto`, a tier or a model id -> a decision -> the targets, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.errors import ModelNotFound, error_json
from sidecar.provider import Target
from sidecar.routing import Decision, RequestedModelRouter, model_listing, plan
from sidecar.settings import Settings, parse_settings
from sidecar.wire.openai import ChatRequest, parse_chat_request


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return parse_settings(
        {
            "providers": {"cloud": {"kind": "demo"}, "local": {"kind": "demo", "on_prem": True}},
            "models": {
                "small": {"provider": "cloud"},
                "big": {"provider": "cloud", "name": "upstream-big"},
                "box": {"provider": "local"},
                "solo": {"provider": "cloud"},
            },
            "tiers": {"light": ["small", "box"], "heavy": ["big", "small"]},
            "routing": {"default_tier": "heavy"},
        },
        base_dir=tmp_path,
    )


def request(model: str) -> ChatRequest:
    return parse_chat_request(
        json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("auto", Decision("heavy")),
        ("light", Decision("light")),
        ("heavy", Decision("heavy")),
        ("small", Decision("light", "small")),  # in both tiers: the first one listing it
        ("big", Decision("heavy", "big")),
        ("box", Decision("light", "box")),
        ("solo", Decision(None, "solo")),  # in no tier
    ],
)
def test_decide(settings: Settings, model: str, expected: Decision) -> None:
    decision = RequestedModelRouter(settings).decide(request(model))
    assert decision == expected
    assert decision.policy is None


@pytest.mark.parametrize("model", ["gpt-9", "Auto", "LIGHT", "upstream-big", " small"])
def test_decide_unknown_model(settings: Settings, model: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        RequestedModelRouter(settings).decide(request(model))

    exc = info.value
    assert (exc.status_code, exc.param, exc.code) == (404, "model", "model_not_found")
    assert f"'{model}'" in exc.message
    assert "light, heavy" in exc.message
    assert json.loads(error_json(exc))["error"] == {
        "message": exc.message,
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (
            Decision("heavy"),
            [
                Target("big", "cloud", "upstream-big", "heavy", False),
                Target("small", "cloud", "small", "heavy", False),
            ],
        ),
        (
            Decision("light"),
            [
                Target("small", "cloud", "small", "light", False),
                Target("box", "local", "box", "light", True),
            ],
        ),
        (Decision("heavy", "small"), [Target("small", "cloud", "small", "heavy", False)]),
        (Decision(None, "solo"), [Target("solo", "cloud", "solo", None, False)]),
    ],
)
def test_plan(settings: Settings, decision: Decision, expected: list[Target]) -> None:
    assert plan(decision, settings) == expected


def test_auto_plans_the_default_tier_in_order(settings: Settings) -> None:
    decision = RequestedModelRouter(settings).decide(request("auto"))
    assert [t.model_id for t in plan(decision, settings)] == ["big", "small"]


def test_model_listing(settings: Settings) -> None:
    listing = model_listing(settings, created=1700000000)

    assert listing["object"] == "list"
    data = listing["data"]
    assert isinstance(data, list)
    assert [entry["id"] for entry in data] == [
        "auto",
        "light",
        "heavy",
        "small",
        "big",
        "box",
        "solo",
    ]
    for entry in data:
        assert entry == {
            "id": entry["id"],
            "object": "model",
            "created": 1700000000,
            "owned_by": "sidecar",
        }
