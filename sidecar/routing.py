"""The routing decision, and the targets it leads to.

The decision is one swappable step (`Router`): for now the request's `model` names the
default tier (`auto`), a tier or a model id. Policies replace this step, nothing around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .errors import ModelNotFound
from .provider import Target
from .settings import Settings
from .wire.openai import ChatRequest

AUTO_MODEL = "auto"


@dataclass(frozen=True, slots=True)
class Decision:
    tier: str | None
    """The tier that serves; for an explicit model, the first tier that lists it (if any)."""
    model: str | None = None
    """An explicit model id; None means the tier's members, in order."""
    policy: str | None = None
    """The policy that decided, None when no policy did."""


class Router(Protocol):
    def decide(self, request: ChatRequest) -> Decision: ...


class RequestedModelRouter:
    """`auto` -> the default tier; a tier name -> that tier; a model id -> that model."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def decide(self, request: ChatRequest) -> Decision:
        settings = self._settings
        name = request.model
        if name == AUTO_MODEL:
            return Decision(settings.routing.default_tier)
        if name in settings.tiers:
            return Decision(name)
        if name in settings.models:
            tiers = settings.tiers_of(name)
            return Decision(tiers[0] if tiers else None, name)
        raise ModelNotFound(
            f"The model '{name}' does not exist: use 'auto', a tier "
            f"({', '.join(settings.tiers)}) or a configured model id. GET /v1/models lists them.",
            param="model",
        )


def plan(decision: Decision, settings: Settings) -> list[Target]:
    """The targets for a decision, in the order they are tried."""
    if decision.model is not None:
        return [target(decision.model, decision.tier, settings)]
    assert decision.tier is not None
    return [target(model_id, decision.tier, settings) for model_id in settings.tiers[decision.tier]]


def target(model_id: str, tier: str | None, settings: Settings) -> Target:
    model = settings.models[model_id]
    provider = settings.providers[model.provider]
    return Target(model_id, model.provider, model.name, tier, provider.on_prem)


def model_listing(settings: Settings, created: int) -> Mapping[str, object]:
    """`GET /v1/models`: `auto`, then the tiers, then the models, as OpenAI model objects."""
    names = [AUTO_MODEL, *settings.tiers, *settings.models]
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "sidecar"}
            for name in names
        ],
    }
