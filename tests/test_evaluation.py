"""`sidecar eval` on the labelled dev set, with the example configuration and policies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sidecar.evaluation import evaluate, read_rows
from sidecar.plugins import load_plugins
from sidecar.runtime import build_router
from sidecar.settings import load_settings

from .support import REPO, SHARED

DEV = SHARED / "evaldata" / "dev.jsonl"


def test_example_policies_meet_the_routing_targets_on_dev() -> None:
    settings = load_settings(REPO / "sidecar.yaml")
    router = build_router(settings, load_plugins(settings.plugins.disabled))
    router.signals.budget_s = float("inf")  # as `sidecar eval` runs: load must not matter
    metrics = evaluate(router, read_rows(DEV)).metrics()
    assert metrics["rows"] == 775
    assert metrics["sensitive_recall"] >= 0.99
    assert metrics["false_positive_rate"] <= 0.03
    assert metrics["tier_accuracy"] >= 0.85
    assert metrics["frontier_below_frontier"] <= 0.08
    assert metrics["projected_cost_usd"] < metrics["baseline_cost_usd"]


def test_eval_command_prints_the_report_as_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "eval", str(DEV), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sum(cell["count"] for cell in report["confusion"]) == 775
    assert {"sensitive_recall", "tier_accuracy", "savings", "misses"} <= set(report)


def test_eval_rejects_rows_without_labels(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "eval", str(data)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "rows.jsonl:1: expected `expected_tier` and `sensitive`" in result.stderr
