"""Per-target circuit breakers.

A breaker opens after `failure_threshold` consecutive failures, or when the failure rate
over the last `window` outcomes reaches `failure_rate` (once `min_samples` are in). While
open, its target is skipped. After `cooldown_seconds` it half-opens: one request may
probe; success closes it, failure opens it again for another cooldown. The clock is
injected so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5
    failure_rate: float = 0.5
    window: int = 20
    min_samples: int = 10
    cooldown_seconds: float = 30.0


class Breaker:
    def __init__(self, settings: BreakerSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=settings.window)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self.state = CLOSED
        self.opened = 0
        """How many times it has opened."""
        self.latency_ms = 0.0
        """Moving average of successful attempts' durations (to the first chunk of a stream)."""

    def allows(self) -> bool:
        """May a request be sent now? In half-open state, only one probe at a time."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() - self._opened_at < self._settings.cooldown_seconds:
                return False
            self.state = HALF_OPEN
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def available(self) -> bool:
        """Would `allows` say yes, without taking the half-open probe."""
        if self.state == OPEN:
            return self._clock() - self._opened_at >= self._settings.cooldown_seconds
        return not (self.state == HALF_OPEN and self._probing)

    def succeeded(self, seconds: float | None = None) -> None:
        if seconds is not None:
            sample = seconds * 1000
            self.latency_ms = (
                sample if not self.latency_ms else 0.8 * self.latency_ms + 0.2 * sample
            )
        self._outcomes.append(True)
        self._consecutive = 0
        if self.state == HALF_OPEN:
            self.state = CLOSED
            self._outcomes.clear()
        self._probing = False

    def failed(self) -> None:
        self._outcomes.append(False)
        self._consecutive += 1
        self._probing = False
        if self.state == HALF_OPEN or self._tripped():
            self._open()

    def error_rate(self) -> float:
        if not self._outcomes:
            return 0.0
        return self._outcomes.count(False) / len(self._outcomes)

    def _tripped(self) -> bool:
        settings = self._settings
        if self._consecutive >= settings.failure_threshold:
            return True
        return len(self._outcomes) >= settings.min_samples and (
            self.error_rate() >= settings.failure_rate
        )

    def _open(self) -> None:
        self.state = OPEN
        self._opened_at = self._clock()
        self.opened += 1


class Breakers:
    """One breaker per target (configured model id)."""

    def __init__(
        self,
        names: Iterable[str],
        settings: BreakerSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._breakers = {name: Breaker(settings, clock) for name in names}

    def __getitem__(self, name: str) -> Breaker:
        return self._breakers[name]

    def describe(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "state": breaker.state,
                "available": breaker.available(),
                "error_rate": round(breaker.error_rate(), 4),
                "opened": breaker.opened,
                "latency_ms": round(breaker.latency_ms, 1),
            }
            for name, breaker in self._breakers.items()
        }
