"""How long the default classifiers take together, per prompt size, on one core.

    taskset -c 1 .venv/bin/python bench/classifiers.py [--rounds N]

Prompts of about 2 KB and 20 KB are cut from the evaluation prompts (each size built from
several different rows, sensitive and not), and run through `Signals.run` exactly as the
request path does. Prints the median and p90 per classifier and for all of them together.
Every run gets a new `Prompt`, as every request does: what a prompt computes once for all
classifiers (its UTF-8) is paid for by each `all` run, and by each classifier timed alone.
The garbage collector is set up as `sidecar serve` sets it (`settle_garbage_collector`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from sidecar.classifier import Prompt
from sidecar.plugins import load_plugins
from sidecar.server import settle_garbage_collector
from sidecar.settings import load_settings
from sidecar.signals import collect_classifiers

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "evaldata" / "dev.jsonl"


def prompts(size: int, count: int = 40) -> list[Prompt]:
    """`count` prompts of about `size` characters, each a run of consecutive rows."""
    texts = [json.loads(line)["messages"][0]["content"] for line in DATA.read_text().splitlines()]
    result = []
    step = max(1, len(texts) // count)
    for start in range(0, len(texts), step)[:count]:
        text = ""
        index = start
        while len(text) < size:
            text += texts[index % len(texts)] + "\n\n"
            index += 1
        result.append(Prompt.from_messages([{"role": "user", "content": text[:size]}]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50, help="passes over the prompts")
    args = parser.parse_args()
    settings = load_settings(REPO / "sidecar.yaml")
    signals = collect_classifiers(load_plugins(), settings)
    settle_garbage_collector()
    print(f"{'prompt':>7} {'classifier':12} {'median µs':>10} {'p90 µs':>8}")
    for size in (2_000, 20_000):
        batch = prompts(size)
        timings: dict[str, list[float]] = {c.name: [] for c in signals.classifiers}
        totals: list[float] = []
        for _ in range(args.rounds):
            for prompt in batch:
                fresh = Prompt.from_messages(prompt.messages)
                start = time.perf_counter_ns()
                signals.run(fresh)
                totals.append((time.perf_counter_ns() - start) / 1000)
                for classifier in signals.classifiers:
                    fresh = Prompt.from_messages(prompt.messages)
                    begin = time.perf_counter_ns()
                    classifier.classify(fresh)
                    timings[classifier.name].append((time.perf_counter_ns() - begin) / 1000)
        for name, samples in [*timings.items(), ("all", totals)]:
            samples.sort()
            median = statistics.median(samples)
            p90 = samples[int(len(samples) * 0.9)]
            print(f"{size // 1000:>5} KB {name:12} {median:>10.1f} {p90:>8.1f}")


if __name__ == "__main__":
    main()
