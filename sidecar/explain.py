"""Why a request goes where it goes: `sidecar explain`, `POST /-/explain`, `sidecar test`.

Nothing here calls a provider: it runs the classifiers and the policies exactly as a
served request would, and reports every step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidRequest, RequestFailed
from .routing import PolicyRouter, plan
from .wire.openai import ChatRequest, parse_chat_request

EXPECT_KEYS = ("tier", "model", "policy", "confidential")


def chat_request(prompt: str | None = None, body: Mapping[str, Any] | None = None) -> ChatRequest:
    """A chat request from a bare prompt (model `auto`) or a request body."""
    if body is None:
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt or ""}]}
    return parse_chat_request(json.dumps(body).encode())


def explain(
    router: PolicyRouter, request: ChatRequest, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    evaluation = router.evaluate(request, headers or {})
    decision = evaluation.decision
    policies = [
        {
            "name": policy.name,
            "when": policy.when,
            "result": "disabled" if result is None else result,
            "decides": evaluation.verdict.policy is policy,
        }
        for policy, result in evaluation.policy_set.explain(evaluation.activation)
    ]
    targets = [
        {"model": t.model_id, "provider": t.provider, "tier": t.tier, "on_prem": t.on_prem}
        for t in plan(decision, router.settings)
    ]
    return {
        "policy_version": evaluation.policy_set.version,
        "engine": evaluation.policy_set.engine,
        "request": evaluation.activation["request"],
        "signals": evaluation.activation["signals"],
        "failed_classifiers": list(evaluation.failed_classifiers),
        "policies": policies,
        "failed_closed": evaluation.verdict.failed_closed,
        "decision": {
            "policy": decision.policy,
            "tier": decision.tier,
            "model": decision.model,
            "fallback": list(decision.fallback),
            "confidential": decision.confidential,
        },
        "targets": targets,
    }


def render(explanation: Mapping[str, Any]) -> str:
    """The human-readable form of an explanation, for the terminal."""
    request = dict(explanation["request"])
    text = request.pop("text")
    lines = [f"policies {explanation['policy_version']} ({explanation['engine']} CEL engine)"]
    lines.append("request:")
    lines += [f"  {key}: {json.dumps(value)}" for key, value in request.items()]
    lines.append(f"  text: {json.dumps(text[:120])}{' ...' if len(text) > 120 else ''}")
    lines.append("signals:")
    for name, values in explanation["signals"].items():
        lines.append(f"  {name}: {json.dumps(values)}")
    for name in explanation["failed_classifiers"]:
        lines.append(f"  {name}: FAILED (no signal)")
    lines.append("policies, in order:")
    for policy in explanation["policies"]:
        mark = "=>" if policy["decides"] else "  "
        result = policy["result"]
        shown = {True: "true", False: "false"}.get(result, result)
        lines.append(f"  {mark} {policy['name']}: {shown}")
    decision = explanation["decision"]
    if decision["policy"] is None:
        lines.append(f"no policy matched: default tier {decision['tier']}")
    else:
        lines.append(
            f"decided by {decision['policy']}"
            + (" (failed closed)" if explanation["failed_closed"] else "")
        )
    lines.append(
        f"route: tier {decision['tier']}"
        + (f", model {decision['model']}" if decision["model"] else "")
        + (f", then {', '.join(decision['fallback'])}" if decision["fallback"] else "")
        + (", confidential" if decision["confidential"] else "")
    )
    lines.append(
        "targets: "
        + ", ".join(
            f"{t['model']} ({t['provider']}{', on-prem' if t['on_prem'] else ''})"
            for t in explanation["targets"]
        )
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    differences: list[str]


def load_cases(path: Path) -> list[dict[str, Any]]:
    """A YAML file with `cases:`, each a `prompt` or a `request`, and an `expect` mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"{path}: cannot read the cases: {exc}") from None
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or not cases:
        raise InvalidRequest(f"{path}: expected a mapping with a non-empty list `cases`")
    for index, case in enumerate(cases):
        where = f"{path}: cases[{index}]"
        if not isinstance(case, dict):
            raise InvalidRequest(f"{where}: expected a mapping")
        if ("prompt" in case) == ("request" in case):
            raise InvalidRequest(f"{where}: give exactly one of `prompt` or `request`")
        expect = case.get("expect")
        if not isinstance(expect, dict) or not expect:
            raise InvalidRequest(f"{where}: `expect` must map some of {', '.join(EXPECT_KEYS)}")
        unknown = set(expect) - set(EXPECT_KEYS)
        if unknown:
            raise InvalidRequest(f"{where}: unknown expectation {sorted(unknown)[0]!r}")
    return cases


def run_case(router: PolicyRouter, case: Mapping[str, Any], index: int) -> CaseResult:
    name = str(case.get("name") or f"case {index + 1}")
    try:
        request = chat_request(case.get("prompt"), case.get("request"))
        explanation = explain(router, request, case.get("headers") or {})
    except RequestFailed as exc:
        return CaseResult(name, False, [f"request rejected: {exc.message}"])
    decision = explanation["decision"]
    actual = {
        "tier": decision["tier"],
        "model": explanation["targets"][0]["model"] if explanation["targets"] else None,
        "policy": decision["policy"],
        "confidential": decision["confidential"],
    }
    differences = [
        f"{key}: expected {expected!r}, got {actual[key]!r}"
        for key, expected in case["expect"].items()
        if actual[key] != expected
    ]
    return CaseResult(name, not differences, differences)
