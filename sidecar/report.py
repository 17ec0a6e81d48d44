"""`sidecar report`: requests, tokens, cost and savings per tier, read from the usage ledger.

`summarize` returns what `sidecar report --format json` prints. Its keys are stable:

    ledger          the file read
    since           ISO 8601 UTC time of the window's start, or null for the whole ledger
    generated_at    ISO 8601 UTC time of the report
    tiers           one object per tier, ordered by name, the requests with no tier last
                    (rejected before routing); each has `tier` and the keys below
    total           the keys below, over every row of the window

    requests, share                      count, and fraction of all requests (0 to 1)
    input_tokens, output_tokens, cached_input_tokens, tokens (input + output)
    cost_usd, priced_requests            summed cost, and how many rows had a cost
    cost_per_million_tokens              cost_usd per million `tokens`
    baseline_cost_usd                    the same usage priced at `cost.baseline_model`
    savings_usd, savings_rate            baseline minus cost, and as a fraction of the
                                         baseline, over rows priced both ways
    fallbacks, fallback_rate             requests that took more than one attempt or failed over
    errors, error_rate                   requests that ended in an error
    latency_p50_s, latency_p95_s         percentiles of the request duration (linear
                                         interpolation between the closest ranks)

A ratio whose denominator is zero is null. The whole window is aggregated in one SQL pass;
durations come back as one string per tier and are sorted here for the percentiles.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .ledger import SCHEMA_VERSION, TABLE, LedgerError

SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DEFAULT_SINCE = "24h"

_AGGREGATE = f"""
SELECT
    tier,
    COUNT(*),
    TOTAL(input_tokens),
    TOTAL(output_tokens),
    TOTAL(cached_input_tokens),
    TOTAL(cost_usd),
    COUNT(cost_usd),
    TOTAL(baseline_cost_usd),
    TOTAL(CASE WHEN cost_usd IS NOT NULL THEN baseline_cost_usd - cost_usd END),
    TOTAL(CASE WHEN cost_usd IS NOT NULL THEN baseline_cost_usd END),
    SUM(attempts > 1 OR fallback_reason IS NOT NULL),
    SUM(status >= 400 OR error_type IS NOT NULL),
    group_concat(duration_s)
FROM {TABLE}
WHERE id >= ? AND +time >= ?
GROUP BY tier
"""
# `+time` keeps SQLite off the time index for the scan: rows are appended in about the
# order they arrive, so the smallest rowid in the window bounds a contiguous range, and
# reading that range in order is several times faster than a lookup per index entry.
_FIRST_ID = f"SELECT MIN(id) FROM {TABLE} WHERE time >= ?"


def parse_since(text: str, now: float) -> float | None:
    """`24h`, `7d`, `30m`, `90s`, `2w`, an ISO 8601 time (UTC unless it has an offset) or
    `all` (None). Raises ValueError."""
    text = text.strip()
    if text == "all":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if match:
        return now - float(match.group(1)) * SINCE_UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration (30m, 24h, 7d), an ISO 8601 time or 'all'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to a ledger; raises LedgerError when there is none."""
    if not path.is_file():
        raise LedgerError(
            f"no ledger at {path} (ledger.path; a sidecar creates it when it starts serving)"
        )
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        connection.close()
        raise LedgerError(f"{path} is not a ledger: {exc}") from None
    if version == 0 or version > SCHEMA_VERSION:
        connection.close()
        newer = f" written by a newer sidecar (schema version {version})" if version else ""
        raise LedgerError(f"{path} is not a ledger this sidecar can read{newer}")
    return connection


def summarize(
    path: Path, since: float | None = None, *, now: float | None = None
) -> dict[str, Any]:
    """Aggregate the ledger's rows from `since` (unix time; None: all).

    Blocking file I/O, about a second per few hundred thousand rows: run it off the event
    loop. Raises LedgerError."""
    now = time.time() if now is None else now
    connection = connect_readonly(path)
    try:
        if since is None:
            rows = connection.execute(_AGGREGATE, (0, -math.inf)).fetchall()
        else:
            first = connection.execute(_FIRST_ID, (since,)).fetchone()[0]
            rows = connection.execute(_AGGREGATE, (first, since)).fetchall() if first else []
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot read the ledger {path}: {exc}") from None
    finally:
        connection.close()

    total_requests = sum(row[1] for row in rows)
    groups = []
    every: list[float] = []
    for row in sorted(rows, key=lambda r: (r[0] is None, r[0] or "")):
        durations = sorted(map(float, row[-1].split(","))) if row[-1] else []
        every.extend(durations)
        groups.append({"tier": row[0], **_metrics(row[1:-1], durations, total_requests)})
    every.sort()
    totals = [sum(row[i] for row in rows) for i in range(1, len(_AGGREGATE_KEYS) + 1)]
    return {
        "ledger": str(path),
        "since": _iso(since) if since is not None else None,
        "generated_at": _iso(now),
        "tiers": groups,
        "total": _metrics(totals, every, total_requests),
    }


_AGGREGATE_KEYS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "priced_requests",
    "baseline_cost_usd",
    "savings_usd",
    "compared_baseline_usd",
    "fallbacks",
    "errors",
)


def _metrics(values: Any, durations: list[float], total_requests: int) -> dict[str, Any]:
    v = dict(zip(_AGGREGATE_KEYS, values, strict=True))
    requests = int(v["requests"])
    tokens = int(v["input_tokens"] + v["output_tokens"])
    return {
        "requests": requests,
        "share": _ratio(requests, total_requests),
        "input_tokens": int(v["input_tokens"]),
        "output_tokens": int(v["output_tokens"]),
        "cached_input_tokens": int(v["cached_input_tokens"]),
        "tokens": tokens,
        "cost_usd": v["cost_usd"],
        "priced_requests": int(v["priced_requests"]),
        "cost_per_million_tokens": _ratio(v["cost_usd"] * 1_000_000, tokens),
        "baseline_cost_usd": v["baseline_cost_usd"],
        "savings_usd": v["savings_usd"],
        "savings_rate": _ratio(v["savings_usd"], v["compared_baseline_usd"]),
        "fallbacks": int(v["fallbacks"]),
        "fallback_rate": _ratio(v["fallbacks"], requests),
        "errors": int(v["errors"]),
        "error_rate": _ratio(v["errors"], requests),
        "latency_p50_s": percentile(durations, 0.50),
        "latency_p95_s": percentile(durations, 0.95),
    }


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-quantile of sorted values, interpolating linearly between the closest ranks."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


_HEADER: tuple[str, ...] = (
    "tier",
    "requests",
    "share",
    "tokens",
    "cost",
    "$/M tok",
    "savings",
    "fallback",
    "errors",
    "p50",
    "p95",
)


def render(summary: dict[str, Any]) -> str:
    """The summary as an aligned table, one line per tier, then the totals."""
    since = summary["since"] or "the first row"
    lines = [f"{summary['ledger']}: requests since {since} (to {summary['generated_at']})", ""]
    rows = [_HEADER]
    rows += [_cells(group["tier"] or "(none)", group) for group in summary["tiers"]]
    rows.append(_cells("total", summary["total"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    lines += [line(row) for row in rows[:-1]]
    lines.append("  ".join("-" * width for width in widths))
    lines.append(line(rows[-1]))
    return "\n".join(lines)


def _cells(name: str, m: dict[str, Any]) -> tuple[str, ...]:
    savings = "-"
    if m["savings_rate"] is not None:
        savings = f"{_usd(m['savings_usd'])} ({m['savings_rate']:.1%})"
    return (
        name,
        f"{m['requests']:,}",
        _percent(m["share"]),
        _count(m["tokens"]),
        _usd(m["cost_usd"]) if m["priced_requests"] else "-",
        _usd(m["cost_per_million_tokens"], digits=2) if m["priced_requests"] else "-",
        savings,
        _percent(m["fallback_rate"]),
        _percent(m["error_rate"]),
        _seconds(m["latency_p50_s"]),
        _seconds(m["latency_p95_s"]),
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _count(value: int) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.1f}{suffix}"
    return str(value)


def _usd(value: float | None, digits: int | None = None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if digits is None:  # cents hide what a day of cheap requests costs
        digits = 2 if value >= 1 or value == 0 else 4
    return f"{sign}${value:,.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
