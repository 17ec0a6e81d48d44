"""The routing decision, and the targets it leads to.

The decision is one step: the request's `model` must name `auto`, a tier or a model (else
404, as OpenAI answers); the classifiers' signals and the request's fields form the CEL
activation; the current policy set's first matching policy decides; none: the default tier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .activation import config_maps, request_map
from .breaker import Breakers
from .classifier import Prompt
from .errors import ModelNotFound
from .policies import Policy, PolicySet, Verdict
from .provider import Target
from .reload import PolicyStore
from .settings import Settings
from .signals import Signals
from .wire.openai import ChatRequest

AUTO_MODEL = "auto"


@dataclass(frozen=True, slots=True)
class Decision:
    tier: str | None
    """The tier that serves; for an explicit model, the first tier that lists it (if any)."""
    model: str | None = None
    """An explicit model id; None means the tier's members, in order."""
    policy: str | None = None
    """The policy that decided, None when none matched (the default tier)."""
    fallback: tuple[str, ...] = ()
    """Tiers to try after the route's own targets."""
    confidential: bool = False
    """Every attempt must stay on `on_prem` providers."""
    boundary_reason: str | None = None
    """Why the request is confidential, for the client's error and the logs."""
    failed_classifiers: tuple[str, ...] = ()
    """Classifiers that raised or overran their budget on this request (signal lost)."""
    policy_errors: tuple[tuple[str, str], ...] = ()
    """(policy, error) for each policy whose `when` failed on this request."""


@dataclass(frozen=True)
class Evaluation:
    """Everything behind one decision, for `explain` and for telemetry."""

    decision: Decision
    verdict: Verdict
    activation: Mapping[str, Any]
    policy_set: PolicySet
    failed_classifiers: tuple[str, ...]


class PolicyRouter:
    def __init__(
        self,
        settings: Settings,
        store: PolicyStore,
        signals: Signals,
        breakers: Breakers | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.signals = signals
        self.breakers = breakers or Breakers(settings.models, settings.breaker)
        self._tiers, self._models = config_maps(settings)
        self._sensitive_declared = "sensitive" in signals.outputs

    def decide(self, request: ChatRequest, headers: Mapping[str, str]) -> Decision:
        return self.evaluate(request, headers).decision

    def evaluate(self, request: ChatRequest, headers: Mapping[str, str]) -> Evaluation:
        check_model_name(request.model, self.settings)
        policy_set = self.store.current  # captured once: a reload never changes this request
        prompt = Prompt.from_messages(request.messages)
        signals, failed = self.signals.run(prompt)
        tokens = signals.get("tokens", {}).get("total")
        if not isinstance(tokens, int):
            tokens = (len(prompt.text) + 3) // 4
        activation = {
            "request": request_map(request, prompt, tokens, headers),
            "signals": signals,
            "tiers": self._tiers,
            "models": self._models,
        }
        self._refresh_health()
        verdict = policy_set.first_match(activation)
        decision = decide_route(verdict.policy, request.model, self.settings)
        decision = self._boundary(decision, signals, failed)
        if failed or verdict.errors:  # rare: kept off the common path
            decision = dataclasses.replace(
                decision, failed_classifiers=tuple(failed), policy_errors=verdict.errors
            )
        return Evaluation(decision, verdict, activation, policy_set, tuple(failed))

    def _boundary(
        self, decision: Decision, signals: Mapping[str, Any], failed: list[str]
    ) -> Decision:
        if decision.confidential:
            reason = f"policy {decision.policy} is confidential"
            return dataclasses.replace(decision, boundary_reason=reason)
        if not self.settings.routing.sensitive_on_prem_only or not self._sensitive_declared:
            return decision
        if "sensitive" in failed:  # fail closed: the signal that would tell is missing
            reason = "the sensitive-data classifier failed, so the request is treated as sensitive"
            return dataclasses.replace(decision, confidential=True, boundary_reason=reason)
        sensitive = signals.get("sensitive", {})
        if sensitive.get("found"):
            kinds = ", ".join(sensitive.get("kinds") or []) or "sensitive data"
            reason = f"the request carries sensitive data ({kinds})"
            return dataclasses.replace(decision, confidential=True, boundary_reason=reason)
        return decision

    def _refresh_health(self) -> None:
        """Breaker states into the `models` and `tiers` variables, so policies see them."""
        for model_id, entry in self._models.items():
            breaker = self.breakers[model_id]
            entry["breaker"] = breaker.state
            entry["available"] = breaker.available()
            entry["error_rate"] = breaker.error_rate()
            entry["latency_ms"] = breaker.latency_ms
        for entry in self._tiers.values():
            entry["available"] = any(self._models[m]["available"] for m in entry["models"])


def check_model_name(name: str, settings: Settings) -> None:
    if name == AUTO_MODEL or name in settings.tiers or name in settings.models:
        return
    raise ModelNotFound(
        f"The model '{name}' does not exist: use 'auto', a tier "
        f"({', '.join(settings.tiers)}) or a configured model id. GET /v1/models lists them.",
        param="model",
    )


def decide_route(policy: Policy | None, requested: str, settings: Settings) -> Decision:
    if policy is None:
        return Decision(settings.routing.default_tier)
    name, fallback, confidential = policy.name, policy.fallback, policy.confidential
    route = policy.route
    if route.requested:
        if requested in settings.tiers:
            return Decision(requested, None, name, fallback, confidential)
        if requested in settings.models:
            tiers = settings.tiers_of(requested)
            return Decision(tiers[0] if tiers else None, requested, name, fallback, confidential)
        return Decision(settings.routing.default_tier, None, name, fallback, confidential)
    if route.model is not None:
        tiers = settings.tiers_of(route.model)
        return Decision(tiers[0] if tiers else None, route.model, name, fallback, confidential)
    return Decision(route.tier, None, name, fallback, confidential)


def plan(decision: Decision, settings: Settings) -> list[Target]:
    """The targets for a decision, in the order they are tried."""
    if decision.model is not None:
        targets = [target(decision.model, decision.tier, settings)]
    else:
        assert decision.tier is not None
        targets = [target(m, decision.tier, settings) for m in settings.tiers[decision.tier]]
    for tier in decision.fallback:
        targets.extend(target(m, tier, settings) for m in settings.tiers[tier])
    return targets


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
