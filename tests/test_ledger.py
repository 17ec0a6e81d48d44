"""The usage ledger: batching, the bounded queue, restarts, the schema, failures, no text."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar import RequestRecord, Usage
from sidecar.app import create_app
from sidecar.ledger import (
    COLUMNS,
    DROP_LOG_INTERVAL,
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    LedgerPlugin,
    ledger_of,
)
from sidecar.plugins import load_plugins
from sidecar.runtime import build_runtime
from sidecar.settings import LedgerSettings, Settings, parse_settings

from .support import DEMO_CONFIG


def record(number: int = 0, **changes: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "request_id": f"req-{number}",
        "started_at": 1_700_000_000.0 + number,
        "duration_s": 0.25,
        "status": 200,
        "stream": False,
        "requested_model": "auto",
        "tier": "light",
        "model_id": "small",
        "provider": "cloud",
        "policy": "50-simple",
        "usage": Usage(100, 20, 10, 5),
        "attempts": 1,
        "cost_usd": 0.001,
        "baseline_cost_usd": 0.01,
    }
    fields.update(changes)
    return RequestRecord(**fields)


def settings_for(path: Path, **changes: Any) -> LedgerSettings:
    return LedgerSettings(path=path, **{"flush_interval_seconds": 60.0, **changes})


def rows(path: Path) -> list[sqlite3.Row]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM requests ORDER BY id").fetchall()
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def test_a_row_holds_the_record(tmp_path: Path) -> None:
    ledger = Ledger.open(settings_for(tmp_path / "l.db"))
    ledger.submit(record(1, attempts=2, fallback_reason="rate_limited", confidential=True))
    ledger.submit(record(2, usage=None, cost_usd=None, baseline_cost_usd=None, status=502))
    assert ledger.close()
    first, second = rows(tmp_path / "l.db")
    assert dict(first) == {
        "id": 1,
        "request_id": "req-1",
        "time": 1_700_000_001.0,
        "policy": "50-simple",
        "tier": "light",
        "model": "small",
        "provider": "cloud",
        "requested_model": "auto",
        "stream": 0,
        "input_tokens": 100,
        "output_tokens": 20,
        "cached_input_tokens": 10,
        "cache_write_input_tokens": 5,
        "cost_usd": 0.001,
        "baseline_cost_usd": 0.01,
        "duration_s": 0.25,
        "attempts": 2,
        "status": 200,
        "error_type": None,
        "fallback_reason": "rate_limited",
        "confidential": 1,
    }
    assert (second["input_tokens"], second["cost_usd"], second["status"]) == (None, None, 502)


def test_a_full_batch_is_committed_without_waiting_for_the_interval(tmp_path: Path) -> None:
    ledger = Ledger(settings_for(tmp_path / "l.db"), batch_size=3)
    ledger.start()
    for number in range(7):
        ledger.submit(record(number))
    wait_for(lambda: ledger.written == 6)
    assert len(rows(tmp_path / "l.db")) == 6  # two batches; the 7th waits for the interval
    assert ledger.flush()
    assert len(rows(tmp_path / "l.db")) == 7
    assert ledger.close()


def test_a_partial_batch_is_committed_after_the_flush_interval(tmp_path: Path) -> None:
    ledger = Ledger.open(settings_for(tmp_path / "l.db", flush_interval_seconds=0.05))
    ledger.submit(record())
    wait_for(lambda: ledger.written == 1)
    assert len(rows(tmp_path / "l.db")) == 1
    assert ledger.close()


def test_a_full_queue_drops_and_counts_without_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    # Not started: nothing drains the queue, so it stays full.
    ledger = Ledger(settings_for(tmp_path / "l.db", queue_size=3), clock=lambda: now[0])
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, "sidecar.ledger"):
        accepted = [ledger.submit(record(number)) for number in range(10)]
        now[0] += DROP_LOG_INTERVAL / 2
        ledger.submit(record(10))
        now[0] += DROP_LOG_INTERVAL
        ledger.submit(record(11))
    assert time.perf_counter() - started < 1.0
    assert accepted == [True] * 3 + [False] * 7
    assert ledger.dropped == 9
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "ledger: queue full (ledger.queue_size 3), 1 rows dropped so far",
        "ledger: queue full (ledger.queue_size 3), 9 rows dropped so far",
    ]
    ledger.start()
    assert ledger.close()
    assert [row["request_id"] for row in rows(tmp_path / "l.db")] == ["req-0", "req-1", "req-2"]
    assert ledger.stats() == {
        "path": str(tmp_path / "l.db"),
        "queued": 0,
        "written": 3,
        "dropped": 9,
        "failed": 0,
    }


def test_a_restart_appends(tmp_path: Path) -> None:
    for numbers in ([1, 2], [3, 4, 5]):
        ledger = Ledger.open(settings_for(tmp_path / "l.db"))
        for number in numbers:
            ledger.submit(record(number))
        assert ledger.close()
    assert [row["request_id"] for row in rows(tmp_path / "l.db")] == [
        f"req-{n}" for n in range(1, 6)
    ]


def test_schema_is_versioned_in_wal_mode(tmp_path: Path) -> None:
    Ledger.open(settings_for(tmp_path / "sub" / "l.db")).close()
    connection = sqlite3.connect(tmp_path / "sub" / "l.db")
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in connection.execute("PRAGMA table_info(requests)")]
        indexes = [row[1] for row in connection.execute("PRAGMA index_list(requests)")]
    finally:
        connection.close()
    assert columns == ["id", *(name for name, _ in COLUMNS)]
    assert indexes == ["requests_time"]


def test_a_ledger_from_a_newer_sidecar_is_refused(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "l.db")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(LedgerError, match=r"^ledger\.path: .* schema version 2, newer"):
        Ledger.open(settings_for(tmp_path / "l.db"))


def test_close_waits_at_most_its_bound_for_a_stuck_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger.open(settings_for(tmp_path / "l.db"))
    blocker = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        ledger.submit(record())
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, "sidecar.ledger"):
            assert not ledger.close(timeout=0.2)
        assert time.perf_counter() - started < 1.0
        assert "rows not written to" in caplog.text
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    ledger._thread.join(10)
    assert len(rows(tmp_path / "l.db")) == 1  # the lock freed, the writer finished


def test_an_unwritable_path_is_reported_with_the_key(tmp_path: Path) -> None:
    (tmp_path / "mounted").write_text("a file where a directory should be")
    config = {**DEMO_CONFIG, "ledger": {"path": "mounted/sidecar-ledger.db"}}
    settings = parse_settings(config, base_dir=tmp_path)
    plugins = load_plugins()
    asyncio.run(plugins.notify("startup", settings=settings))
    asyncio.run(plugins.notify("request_finished", record=record()))  # a no-op, not an error
    (failure,) = plugins.describe()["failed"]
    assert failure["plugin"] == "sidecar.ledger"
    assert failure["stage"] == "startup"
    assert failure["error"].startswith(
        f"LedgerError: ledger.path: cannot open {tmp_path / 'mounted' / 'sidecar-ledger.db'}: "
    )
    assert "ledger.enabled: false" in failure["error"]
    assert ledger_of(plugins) is None


def test_disabled_ledger_creates_no_file(tmp_path: Path) -> None:
    config = {**DEMO_CONFIG, "ledger": {"enabled": False}}
    plugins = load_plugins()
    asyncio.run(plugins.notify("startup", settings=parse_settings(config, base_dir=tmp_path)))
    asyncio.run(plugins.notify("request_finished", record=record()))
    assert ledger_of(plugins) is None
    assert not list(tmp_path.iterdir())


def test_two_apps_in_one_process_keep_their_own_ledgers(tmp_path: Path) -> None:
    first, second = load_plugins(), load_plugins()
    assert isinstance(first.manager.get_plugin("sidecar.ledger"), LedgerPlugin)
    assert first.manager.get_plugin("sidecar.ledger") is not second.manager.get_plugin(
        "sidecar.ledger"
    )

    def settings(name: str) -> Settings:
        config = {**DEMO_CONFIG, "ledger": {"path": f"{name}.db"}}
        return parse_settings(config, base_dir=tmp_path)

    async def run() -> None:
        await first.notify("startup", settings=settings("first"))
        await second.notify("startup", settings=settings("second"))
        await first.notify("request_finished", record=record(1))
        await second.notify("request_finished", record=record(2))
        await second.notify("request_finished", record=record(3))
        await first.notify("shutdown", settings=settings("first"))
        await second.notify("shutdown", settings=settings("second"))

    asyncio.run(run())
    assert [row["request_id"] for row in rows(tmp_path / "first.db")] == ["req-1"]
    assert [row["request_id"] for row in rows(tmp_path / "second.db")] == ["req-2", "req-3"]


def test_request_finished_does_no_io_on_the_event_loop(tmp_path: Path) -> None:
    plugins = load_plugins()
    settings = parse_settings({**DEMO_CONFIG, "ledger": {"path": "l.db"}}, base_dir=tmp_path)
    asyncio.run(plugins.notify("startup", settings=settings))
    ledger = ledger_of(plugins)
    assert ledger is not None
    threads: set[str] = set()
    original = ledger._write

    def spy(batch: Any) -> None:
        threads.add(threading.current_thread().name)
        original(batch)

    ledger._write = spy
    asyncio.run(plugins.notify("request_finished", record=record()))
    assert ledger.flush()
    asyncio.run(plugins.notify("shutdown", settings=settings))
    assert threads == {"ledger l.db"}
    assert len(rows(tmp_path / "l.db")) == 1


PROMPT_MARKER = "PROMPT-MARKER-41c9e7"


def test_no_prompt_text_is_stored(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    settings = parse_settings({**DEMO_CONFIG, "ledger": {"path": "l.db"}}, base_dir=tmp_path)
    runtime = build_runtime(settings, load_plugins())
    app = create_app(runtime)
    body = {
        "model": "auto",
        "user": PROMPT_MARKER,
        "messages": [
            {"role": "system", "content": f"system {PROMPT_MARKER}"},
            {"role": "user", "content": f"secret {PROMPT_MARKER}"},
        ],
    }

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as c:
                for stream in (False, True):
                    response = await c.post("/v1/chat/completions", json={**body, "stream": stream})
                    assert response.status_code == 200

    asyncio.run(run())
    (row,) = [r for r in rows(tmp_path / "l.db") if not r["stream"]]
    assert (row["tier"], row["model"], row["status"]) == ("light", "small", 200)
    assert len(rows(tmp_path / "l.db")) == 2
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("l.db*"))
    assert row["request_id"].encode() in stored  # the bytes searched are the rows' bytes
    assert PROMPT_MARKER.encode() not in stored
