"""`sidecar report`: aggregation of handcrafted rows, the time window and both formats."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sidecar import RequestRecord, Usage
from sidecar.cli import main
from sidecar.ledger import Ledger
from sidecar.report import parse_since, percentile, render, summarize
from sidecar.settings import LedgerSettings

NOW = 1_750_000_000.0
DAY = 86400.0
METRIC_KEYS = {
    "requests",
    "share",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "tokens",
    "cost_usd",
    "priced_requests",
    "cost_per_million_tokens",
    "baseline_cost_usd",
    "savings_usd",
    "savings_rate",
    "fallbacks",
    "fallback_rate",
    "errors",
    "error_rate",
    "latency_p50_s",
    "latency_p95_s",
}


def row(tier: str | None, duration: float, **changes: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "request_id": f"req-{tier}-{duration}",
        "started_at": NOW - 60,
        "duration_s": duration,
        "status": 200,
        "stream": False,
        "requested_model": "auto",
        "tier": tier,
        "model_id": tier and f"{tier}-model",
        "provider": "cloud",
        "policy": None,
        "usage": None,
        "attempts": 1,
    }
    fields.update(changes)
    return RequestRecord(**fields)


ROWS = [
    row("light", 0.1, usage=Usage(100, 10), cost_usd=0.001, baseline_cost_usd=0.01),
    row(
        "light",
        0.2,
        usage=Usage(200, 20, 50),
        cost_usd=0.002,
        baseline_cost_usd=0.02,
        attempts=2,
        fallback_reason="rate_limited",
    ),
    row("light", 0.4, usage=Usage(300, 30), cost_usd=0.003, baseline_cost_usd=0.03),
    row("light", 2.0, status=502, error_type="api_error", attempts=3),
    row("frontier", 1.0, usage=Usage(1000, 100), cost_usd=0.05, baseline_cost_usd=0.05),
    row(None, 0.01, status=404, error_type="invalid_request_error", attempts=0),
    # Outside a one-day window:
    row("light", 9.0, started_at=NOW - 2 * DAY, usage=Usage(5, 5), cost_usd=1.0),
]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    writer = Ledger.open(LedgerSettings(path=path))
    for record in ROWS:
        writer.submit(record)
    assert writer.close()
    return path


def test_percentile_interpolates_between_the_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([0.1, 0.2, 0.4, 2.0], 0.5) == pytest.approx(0.3)
    assert percentile([0.1, 0.2, 0.4, 2.0], 0.95) == pytest.approx(1.76)
    assert percentile([1.0, 2.0], 1.0) == 2.0


def test_aggregates_per_tier_and_in_total(ledger: Path) -> None:
    summary = summarize(ledger, NOW - DAY, now=NOW)
    assert summary["since"] == "2025-06-14T15:06:40+00:00"
    assert summary["generated_at"] == "2025-06-15T15:06:40+00:00"
    assert [group["tier"] for group in summary["tiers"]] == ["frontier", "light", None]
    frontier, light, none = summary["tiers"]
    assert light == {
        "tier": "light",
        "requests": 4,
        "share": pytest.approx(4 / 6),
        "input_tokens": 600,
        "output_tokens": 60,
        "cached_input_tokens": 50,
        "tokens": 660,
        "cost_usd": pytest.approx(0.006),
        "priced_requests": 3,
        "cost_per_million_tokens": pytest.approx(0.006 / 660 * 1e6),
        "baseline_cost_usd": pytest.approx(0.06),
        "savings_usd": pytest.approx(0.054),
        "savings_rate": pytest.approx(0.9),
        "fallbacks": 2,  # a fallback reason, and three attempts
        "fallback_rate": pytest.approx(0.5),
        "errors": 1,
        "error_rate": pytest.approx(0.25),
        "latency_p50_s": pytest.approx(0.3),
        "latency_p95_s": pytest.approx(1.76),
    }
    assert (frontier["savings_usd"], frontier["savings_rate"]) == (0.0, 0.0)
    assert none["requests"] == 1
    assert none["tokens"] == 0
    assert none["cost_per_million_tokens"] is None
    assert none["savings_rate"] is None
    assert none["error_rate"] == 1.0

    total = summary["total"]
    assert set(total) == METRIC_KEYS
    assert all(set(group) == METRIC_KEYS | {"tier"} for group in summary["tiers"])
    assert total["requests"] == 6
    assert total["share"] == 1.0
    assert total["tokens"] == 660 + 1100
    assert total["cost_usd"] == pytest.approx(0.056)
    assert total["baseline_cost_usd"] == pytest.approx(0.11)
    assert total["savings_usd"] == pytest.approx(0.054)
    assert total["savings_rate"] == pytest.approx(0.054 / 0.11)
    assert (total["fallbacks"], total["errors"]) == (2, 2)
    # every duration of the window: 0.01 0.1 0.2 0.4 1.0 2.0
    assert total["latency_p50_s"] == pytest.approx(0.3)
    assert total["latency_p95_s"] == pytest.approx(1.75)


def test_since_all_includes_every_row(ledger: Path) -> None:
    summary = summarize(ledger, None, now=NOW)
    assert summary["since"] is None
    assert summary["total"]["requests"] == 7
    assert summary["total"]["cost_usd"] == pytest.approx(1.056)
    # No baseline for the old row: the savings compare only rows priced both ways.
    assert summary["total"]["savings_usd"] == pytest.approx(0.054)


def test_an_empty_window(ledger: Path) -> None:
    summary = summarize(ledger, NOW + DAY, now=NOW)
    assert summary["tiers"] == []
    assert summary["total"]["requests"] == 0
    assert summary["total"]["share"] is None
    assert summary["total"]["latency_p95_s"] is None
    assert render(summary).splitlines()[-1].split() == ["total", "0", "-", "0", *["-"] * 7]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - DAY),
        ("7d", NOW - 7 * DAY),
        ("30m", NOW - 1800),
        ("90s", NOW - 90),
        ("2w", NOW - 14 * DAY),
        ("all", None),
        ("2025-06-15T12:00:00", datetime(2025, 6, 15, 12, tzinfo=UTC).timestamp()),
        ("2025-06-15T12:00:00+02:00", datetime(2025, 6, 15, 10, tzinfo=UTC).timestamp()),
        ("2025-06-15", datetime(2025, 6, 15, tzinfo=UTC).timestamp()),
    ],
)
def test_parse_since(text: str, expected: float | None) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "-1h", "3y", ""])
def test_parse_since_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_since(text, NOW)


def test_table(ledger: Path) -> None:
    lines = render(summarize(ledger, NOW - DAY, now=NOW)).splitlines()
    assert (
        lines[0]
        == f"{ledger}: requests since 2025-06-14T15:06:40+00:00 (to 2025-06-15T15:06:40+00:00)"
    )
    table = lines[2:]
    assert table[0].split() == [
        "tier",
        "requests",
        "share",
        "tokens",
        "cost",
        "$/M",
        "tok",
        "savings",
        "fallback",
        "errors",
        "p50",
        "p95",
    ]
    assert len({len(line) for line in table}) == 1, "columns are aligned"
    cells = {line.split()[0]: line.split()[1:] for line in table[1:] if not line.startswith("-")}
    assert cells["light"] == [
        "4",
        "66.7%",
        "660",
        "$0.0060",
        "$9.09",
        "$0.0540",
        "(90.0%)",
        "50.0%",
        "25.0%",
        "300ms",
        "1.76s",
    ]
    assert cells["(none)"] == ["1", "16.7%", "0", "-", "-", "-", "0.0%", "100.0%", "10ms", "10ms"]
    assert cells["total"][:4] == ["6", "100.0%", "1.8k", "$0.0560"]
    assert table[-2].startswith("--------")


def test_cli_json_is_the_summary(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["report", "--ledger", str(ledger), "--since", "all", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = summarize(ledger, None)
    printed.pop("generated_at")
    expected.pop("generated_at")
    assert printed == expected


def test_cli_reads_the_ledger_path_from_the_config(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        "providers: {cloud: {kind: demo}}\nmodels: {small: {provider: cloud}}\n"
        "tiers: {light: [small]}\nrouting: {default_tier: light}\n"
        f"ledger: {{path: {ledger.name}}}\n"
    )
    assert main(["report", "--config", str(config), "--since", "all"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:2] == ["total", "7"]


def test_cli_missing_ledger_is_a_message_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--ledger", str(tmp_path / "nope.db")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sidecar: no ledger at {tmp_path / 'nope.db'} (ledger.path;")
    assert "Traceback" not in err


def test_cli_not_a_ledger_is_a_message_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "text.db").write_text("not a database at all, just some text" * 100)
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    for name in ("text.db", "other.db"):
        assert main(["report", "--ledger", str(tmp_path / name)]) == 1
        assert "is not a ledger" in capsys.readouterr().err


def test_cli_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sidecar.yaml").write_text("ledger: {queue_size: -1}\n")
    assert main(["report", "--config", str(tmp_path / "sidecar.yaml")]) == 2
    assert "ledger.queue_size: must be greater than 0" in capsys.readouterr().err


def test_cli_rejects_a_bad_since(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--ledger", "x.db", "--since", "last week"])
    assert exit_info.value.code == 2
    assert "--since 'last week': expected a duration" in capsys.readouterr().err


def test_the_report_reads_while_a_sidecar_writes(ledger: Path) -> None:
    writer = Ledger.open(LedgerSettings(path=ledger))
    try:
        writer.submit(row("mid", 0.5))
        assert writer.flush()
        assert summarize(ledger, None)["total"]["requests"] == 8
    finally:
        assert writer.close()
