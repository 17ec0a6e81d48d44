"""`sidecar eval`: routing quality and projected cost over labelled prompts.

Rows have the schema of the bundled evaluation data: `messages`, `expected_tier`
(`light`, `mid`, `frontier` or `onprem`), `sensitive` (bool) and optionally `task_type`.
Every row goes through the classifiers and policies exactly as a served request would;
no provider is called.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidRequest
from .explain import chat_request
from .routing import PolicyRouter, plan

DEFAULT_OUTPUT_TOKENS = 300
"""Assumed answer length for the projected cost: the rows carry no answers."""


@dataclass
class Report:
    rows: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    sensitive: int = 0
    sensitive_kept_home: int = 0
    other: int = 0
    other_kept_home: int = 0
    other_correct: int = 0
    frontier: int = 0
    frontier_below: int = 0
    cost: float = 0.0
    baseline_cost: float = 0.0
    misses: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "sensitive_recall": _share(self.sensitive_kept_home, self.sensitive),
            "false_positive_rate": _share(self.other_kept_home, self.other),
            "tier_accuracy": _share(self.other_correct, self.other),
            "frontier_below_frontier": _share(self.frontier_below, self.frontier),
            "projected_cost_usd": round(self.cost, 6),
            "baseline_cost_usd": round(self.baseline_cost, 6),
            "savings": _share(self.baseline_cost - self.cost, self.baseline_cost),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.metrics(),
            "confusion": [
                {"expected": expected, "routed": routed, "count": count}
                for (expected, routed), count in sorted(self.confusion.items())
            ],
            "misses": self.misses,
        }


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidRequest(f"{path}:{number}: not JSON: {exc}") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise InvalidRequest(f"{path}:{number}: expected an object with `messages`")
        if row.get("expected_tier") is None or not isinstance(row.get("sensitive"), bool):
            raise InvalidRequest(f"{path}:{number}: expected `expected_tier` and `sensitive`")
        rows.append(row)
    return rows


def evaluate(
    router: PolicyRouter,
    rows: Iterable[Mapping[str, Any]],
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    baseline_tier: str = "frontier",
) -> Report:
    settings = router.settings
    baseline = (
        settings.models[settings.tiers[baseline_tier][0]]
        if baseline_tier in settings.tiers
        else None
    )
    report = Report()
    for row in rows:
        request = chat_request(body={"model": "auto", "messages": row["messages"]})
        evaluation = router.evaluate(request, {})
        decision = evaluation.decision
        targets = plan(decision, settings)
        routed = decision.tier or (targets[0].model_id if targets else "none")
        kept_home = bool(targets) and all(target.on_prem for target in targets)
        expected = str(row["expected_tier"])
        report.rows += 1
        report.confusion[(expected, routed)] += 1
        if row["sensitive"]:
            report.sensitive += 1
            report.sensitive_kept_home += kept_home
        else:
            report.other += 1
            report.other_kept_home += kept_home
            report.other_correct += routed == expected
            if expected == baseline_tier:
                report.frontier += 1
                report.frontier_below += routed != baseline_tier
        if (routed != expected and not (row["sensitive"] and kept_home)) or (
            row["sensitive"] and not kept_home
        ):
            report.misses.append(
                {
                    "id": row.get("id"),
                    "task_type": row.get("task_type"),
                    "expected": expected,
                    "routed": routed,
                    "policy": decision.policy,
                }
            )
        tokens = evaluation.activation["request"]["tokens"]
        if targets:
            price = settings.models[targets[0].model_id].price
            report.cost += (tokens * price.input + output_tokens * price.output) / 1e6
        if baseline is not None:
            report.baseline_cost += (
                tokens * baseline.price.input + output_tokens * baseline.price.output
            ) / 1e6
    return report


def render(report: Report) -> str:
    expected_tiers = sorted({e for e, _ in report.confusion}, key=_tier_order)
    routed_tiers = sorted({r for _, r in report.confusion}, key=_tier_order)
    width = max(10, *(len(t) + 2 for t in routed_tiers))
    lines = ["tier confusion (rows: expected tier, columns: routed tier)"]
    lines.append(" " * 12 + "".join(f"{t:>{width}}" for t in routed_tiers))
    for expected in expected_tiers:
        counts = "".join(f"{report.confusion[(expected, r)]:>{width}}" for r in routed_tiers)
        lines.append(f"{expected:<12}{counts}")
    m = report.metrics()
    lines += [
        "",
        f"rows                               {m['rows']}",
        f"sensitive kept on premises         {m['sensitive_recall']:.1%} "
        f"({report.sensitive_kept_home}/{report.sensitive})",
        f"non-sensitive kept on premises     {m['false_positive_rate']:.1%} "
        f"({report.other_kept_home}/{report.other})",
        f"tier accuracy (non-sensitive)      {m['tier_accuracy']:.1%} "
        f"({report.other_correct}/{report.other})",
        f"frontier rows routed below it      {m['frontier_below_frontier']:.1%} "
        f"({report.frontier_below}/{report.frontier})",
        f"projected cost                     ${m['projected_cost_usd']:.4f}",
        f"all on the frontier tier           ${m['baseline_cost_usd']:.4f}",
        f"saved                              {m['savings']:.1%}",
    ]
    return "\n".join(lines)


_ORDER = {"light": 0, "mid": 1, "frontier": 2, "onprem": 3}


def _tier_order(name: str) -> tuple[int, str]:
    return (_ORDER.get(name, 9), name)
