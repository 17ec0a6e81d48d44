"""Circuit breakers on an injected clock."""

from __future__ import annotations

from sidecar.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Breakers, BreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(**settings: float) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(BreakerSettings(**settings), clock), clock  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_and_skips_until_the_cooldown() -> None:
    b, clock = breaker(failure_threshold=3, cooldown_seconds=10)
    b.failed()
    b.failed()
    assert (b.state, b.allows()) == (CLOSED, True)
    b.failed()
    assert b.state == OPEN
    assert not b.allows()
    assert not b.available()
    clock.now += 9.9
    assert not b.allows()


def test_a_success_resets_the_consecutive_count() -> None:
    b, _ = breaker(failure_threshold=3, min_samples=100)
    for _ in range(10):
        b.failed()
        b.failed()
        b.succeeded()
    assert b.state == CLOSED


def test_opens_on_the_failure_rate_over_the_window() -> None:
    b, _ = breaker(failure_threshold=100, failure_rate=0.5, window=10, min_samples=10)
    for _ in range(4):
        b.failed()
        b.succeeded()
    b.succeeded()
    assert b.state == CLOSED  # 4 of 9: not enough samples yet
    b.failed()
    assert b.state == OPEN  # 5 of 10


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    b, clock = breaker(failure_threshold=1, cooldown_seconds=5)
    b.failed()
    clock.now += 5
    assert b.available()
    assert b.allows()
    assert b.state == HALF_OPEN
    assert not b.allows()  # a second request waits for the probe's outcome
    assert not b.available()
    b.succeeded()
    assert b.state == CLOSED
    assert b.allows()
    assert b.error_rate() == 0.0


def test_a_failed_probe_opens_it_again_for_a_whole_cooldown() -> None:
    b, clock = breaker(failure_threshold=1, cooldown_seconds=5)
    b.failed()
    clock.now += 6
    assert b.allows()
    b.failed()
    assert b.state == OPEN
    assert b.opened == 2
    clock.now += 4
    assert not b.allows()
    clock.now += 1
    assert b.allows()


def test_breakers_describe_every_model() -> None:
    clock = Clock()
    breakers = Breakers(["a", "b"], BreakerSettings(failure_threshold=1), clock)
    breakers["a"].failed()
    breakers["b"].succeeded(0.100)
    breakers["b"].succeeded(0.200)
    assert breakers.describe() == {
        "a": {
            "state": "open",
            "available": False,
            "error_rate": 1.0,
            "opened": 1,
            "latency_ms": 0.0,
        },
        "b": {
            "state": "closed",
            "available": True,
            "error_rate": 0.0,
            "opened": 0,
            "latency_ms": 120.0,
        },
    }
