"""How long a routing decision over 20 policies takes, on each CEL engine.

    .venv/bin/python bench/policy_decision.py [--rounds N]

Twenty realistic policies (header, signal, token and text tests); the request matches
the last one, so every policy is evaluated: the worst case for a first-match chain.
Reports the median and p90 of `PolicySet.first_match` (activation preparation
included) per engine, over many rounds. Pin it to one core for stable figures:
`taskset -c 1 .venv/bin/python bench/policy_decision.py`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from sidecar import cel
from sidecar.activation import VARIABLES, config_maps, sample_request
from sidecar.policies import PolicyFile, build_policy_set
from sidecar.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SIGNALS = {
    "tokens": {"total": "int"},
    "task": {"kind": "string", "complexity": "double", "multi_step": "bool", "language": "string"},
    "sensitive": {"found": "bool", "kinds": "list"},
}
WHENS = [
    "signals.sensitive.found",
    '"x-team" in request.headers && request.headers["x-team"] == "research"',
    'request.model != "auto" && request.model in models',
    'signals.task.kind in ["math", "reasoning", "code_complex", "expert"]',
    "signals.task.complexity >= 0.75",
    "signals.task.multi_step && request.tokens > 3000",
    "request.has_images",
    "request.has_tools && request.tokens > 8000",
    'request.user.startsWith("batch-")',
    'request.text.contains("step by step")',
    'signals.task.language != "en" && signals.task.kind == "creative"',
    "request.max_tokens != null && request.max_tokens > 4000",
    'signals.task.kind == "summarization" && request.tokens > 20000',
    'signals.task.kind in ["summarization", "translation"]',
    'signals.task.kind in ["code", "rewrite"]',
    'signals.task.kind in ["creative", "open_qa"]',
    "request.message_count > 20",
    'signals.task.kind in ["classification", "extraction"]',
    'signals.task.kind == "simple_qa" && request.tokens < 500',
    "request.tokens >= 0",
]


def activation(settings: Any) -> dict[str, Any]:
    tiers, models = config_maps(settings)
    request = {**sample_request(), "tokens": 240, "text": "Tell me a story. " * 20}
    signals = {
        "tokens": {"total": 240},
        "task": {"kind": "other", "complexity": 0.3, "multi_step": False, "language": "en"},
        "sensitive": {"found": False, "kinds": []},
    }
    return {"request": request, "signals": signals, "tiers": tiers, "models": models}


def measure(engine: str, rounds: int) -> list[float]:
    settings = load_settings(REPO / "sidecar.yaml")
    environment = cel.Environment(engine, VARIABLES)
    files = [PolicyFile(f"{i:02d}.yaml", _yaml(when)) for i, when in enumerate(WHENS)]
    values = activation(settings)
    policies = build_policy_set(files, settings, environment, [values], SIGNALS)
    verdict = policies.first_match(values)
    if verdict.policy is None or verdict.policy.name != "19":
        raise SystemExit(f"the benchmark request should match the last policy, got {verdict}")
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        policies.first_match(values)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _yaml(when: str) -> str:
    quoted = when.replace("'", "''")
    return f"when: '{quoted}'\nroute: {{tier: mid}}\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    print(f"{'engine':8} {'policies':>8} {'median µs':>10} {'p90 µs':>8}")
    for engine in cel.available_engines():
        rounds = args.rounds if engine == "native" else max(50, args.rounds // 200)
        samples = sorted(measure(engine, rounds))
        median = statistics.median(samples)
        p90 = samples[int(len(samples) * 0.9)]
        print(f"{engine:8} {len(WHENS):>8} {median:>10.1f} {p90:>8.1f}")


if __name__ == "__main__":
    main()
