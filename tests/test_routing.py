"""Routes -> decisions -> the targets, in order; the model name check in front of policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.errors import ModelNotFound, error_json
from sidecar.policies import Policy, Route
from sidecar.provider import Target
from sidecar.routing import Decision, check_model_name, decide_route, model_listing, plan
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


REQUESTED = Policy("20-explicit", "20-explicit.yaml", "true", Route(requested=True))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("auto", Decision("heavy", policy="20-explicit")),
        ("light", Decision("light", policy="20-explicit")),
        ("heavy", Decision("heavy", policy="20-explicit")),
        # in both tiers: the first one listing it
        ("small", Decision("light", "small", policy="20-explicit")),
        ("big", Decision("heavy", "big", policy="20-explicit")),
        ("box", Decision("light", "box", policy="20-explicit")),
        ("solo", Decision(None, "solo", policy="20-explicit")),  # in no tier
    ],
)
def test_requested_route(settings: Settings, model: str, expected: Decision) -> None:
    assert decide_route(REQUESTED, model, settings) == expected


def test_no_policy_means_the_default_tier(settings: Settings) -> None:
    assert decide_route(None, "light", settings) == Decision("heavy")


def test_policy_routes_carry_fallback_and_confidentiality(settings: Settings) -> None:
    to_tier = Policy(
        "p", "p.yaml", "true", Route(tier="light"), fallback=("heavy",), confidential=True
    )
    to_model = Policy("q", "q.yaml", "true", Route(model="big"))
    assert decide_route(to_tier, "auto", settings) == Decision(
        "light", None, "p", ("heavy",), confidential=True
    )
    assert decide_route(to_model, "auto", settings) == Decision("heavy", "big", "q")


def test_fallback_tiers_follow_the_route_in_the_plan(settings: Settings) -> None:
    targets = plan(Decision("light", fallback=("heavy",)), settings)
    assert [(t.model_id, t.tier) for t in targets] == [
        ("small", "light"),
        ("box", "light"),
        ("big", "heavy"),
        ("small", "heavy"),
    ]


@pytest.mark.parametrize("model", ["gpt-9", "Auto", "LIGHT", "upstream-big", " small"])
def test_decide_unknown_model(settings: Settings, model: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        check_model_name(request(model).model, settings)

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
    decision = decide_route(None, "auto", settings)
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
