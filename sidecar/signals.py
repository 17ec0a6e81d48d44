"""Run the classifiers on a prompt and collect their outputs as `signals`.

Each classifier is isolated: one that raises or returns something other than a mapping
loses its signal for that request (the policy reading it then fails, and a confidential
policy fails closed), and the failure is counted and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .activation import SAMPLE_VALUES
from .classifier import OUTPUT_TYPES, Classifier, Prompt
from .plugins import Plugins
from .settings import Settings

logger = logging.getLogger("sidecar.signals")


@dataclass
class Signals:
    classifiers: tuple[Classifier, ...]
    budget_s: float = 0.050
    """A classifier that takes longer than this loses its signal for that request."""
    failures: dict[str, int] = field(default_factory=dict)
    """Failures (errors and overruns) per classifier since start."""

    @property
    def outputs(self) -> dict[str, Mapping[str, str]]:
        return {classifier.name: classifier.outputs for classifier in self.classifiers}

    def run(self, prompt: Prompt) -> tuple[dict[str, Any], list[str]]:
        """The signals, and the names of the classifiers that failed."""
        signals: dict[str, Any] = {}
        failed: list[str] = []
        for classifier in self.classifiers:
            started = time.perf_counter()
            try:
                result = classifier.classify(prompt)
            except Exception:
                logger.exception("classifier %s failed", classifier.name)
                self._failed(classifier.name, failed)
                continue
            elapsed = time.perf_counter() - started
            if elapsed > self.budget_s:
                # Classifiers are synchronous and cannot be interrupted; a late answer is
                # dropped all the same, so a policy never depends on a slow path's timing
                # only some of the time without it being visible.
                logger.warning(
                    "classifier %s took %.1f ms, over its %.1f ms budget: signal dropped",
                    classifier.name,
                    elapsed * 1000,
                    self.budget_s * 1000,
                )
                self._failed(classifier.name, failed)
                continue
            # CEL engines only read real dicts.
            signals[classifier.name] = result if type(result) is dict else dict(result)
        return signals, failed

    def _failed(self, name: str, failed: list[str]) -> None:
        self.failures[name] = self.failures.get(name, 0) + 1
        failed.append(name)

    def sample(self) -> dict[str, Any]:
        """Signals of the declared types, for dry-running policies."""
        return {
            classifier.name: {
                name: SAMPLE_VALUES[type_name] for name, type_name in classifier.outputs.items()
            }
            for classifier in self.classifiers
        }


def collect_classifiers(plugins: Plugins, settings: Settings) -> Signals:
    """Classifiers from the `register_classifiers` hook; plugins come before built-ins, and
    the first classifier of a name wins."""
    chosen: dict[str, Classifier] = {}
    for plugin, result in plugins.call_each("register_classifiers", settings=settings):
        items: Iterable[Any] = result if isinstance(result, list | tuple) else [result]
        for classifier in items:
            problem = _check(classifier)
            if problem:
                plugins.fail(plugin, "register_classifiers", problem)
                continue
            chosen.setdefault(classifier.name, classifier)
    return Signals(tuple(chosen.values()), settings.classifiers.budget_ms / 1000)


def _check(classifier: Any) -> str | None:
    name = getattr(classifier, "name", None)
    outputs = getattr(classifier, "outputs", None)
    if not isinstance(name, str) or not name.isidentifier():
        return f"returned {classifier!r}: a classifier needs a `name` that is an identifier"
    if not isinstance(outputs, Mapping) or not callable(getattr(classifier, "classify", None)):
        return f"classifier {name!r} needs `outputs` (a mapping) and a `classify` method"
    for output, type_name in outputs.items():
        if type_name not in OUTPUT_TYPES:
            expected = ", ".join(OUTPUT_TYPES)
            return f"classifier {name!r}: output {output!r} has type {type_name!r} ({expected})"
    return None
