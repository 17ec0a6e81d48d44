"""The ledger of a real `sidecar serve` process under load, stopped by SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from sidecar.cli import main

from ..support import DEMO_CONFIG
from .conftest import running_sidecar, sdk
from .processes import Process, serving, write_config

HELLO = [{"role": "user", "content": "hi"}]
CLIENTS = 4
ANSWERS = 60
"""Answers received before the signal: enough that requests are in flight when it comes."""
TIERS = {"light", "frontier", "onprem", None}


class Load:
    """Clients in threads calling the sidecar until it goes away; keeps the request id of
    every answer received in full."""

    def __init__(self, sidecar: Process) -> None:
        self.sidecar = sidecar
        self.received: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.received) >= count, "the sidecar answered too few requests"

    def _run(self, number: int) -> None:
        models = ["auto", "frontier", "onprem", "no-such-model"]
        with openai.OpenAI(
            base_url=f"{self.sidecar.url}/v1", api_key="sk-client", max_retries=0, timeout=10
        ) as client:
            turn = number
            while not self.stop.is_set():
                turn += 1
                model = models[turn % len(models)]
                try:
                    if turn % 3:
                        raw = client.chat.completions.with_raw_response.create(
                            model=model, messages=HELLO
                        )
                        raw.parse()
                    else:
                        raw = client.chat.completions.with_raw_response.create(
                            model=model, messages=HELLO, stream=True
                        )
                        list(raw.parse())
                    self.received.append(raw.headers["x-sidecar-request-id"])
                except openai.NotFoundError as exc:
                    self.received.append(exc.response.headers["x-sidecar-request-id"])
                except (openai.APIConnectionError, httpx.HTTPError):
                    return  # the sidecar is going away


def ledger_rows(path: Path) -> list[sqlite3.Row]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return connection.execute("SELECT * FROM requests ORDER BY id").fetchall()
    finally:
        connection.close()


def assert_well_formed(rows: list[sqlite3.Row], since: float) -> None:
    assert len({row["request_id"] for row in rows}) == len(rows)
    for row in rows:
        assert since - 1 < row["time"] < time.time() + 1
        assert row["tier"] in TIERS
        assert row["requested_model"] in {"auto", "frontier", "onprem", "no-such-model"}
        assert row["stream"] in (0, 1)
        assert row["duration_s"] > 0
        if row["status"] == 200:
            assert row["model"] in {"small", "big", "box"}
            assert row["input_tokens"] > 0
            assert row["output_tokens"] > 0
            assert row["attempts"] >= 1
        else:
            assert (row["status"], row["error_type"]) == (404, "invalid_request_error")
            assert row["input_tokens"] is None
            assert row["cost_usd"] is None


def ledger_config(tmp_path: Path, flush_interval: float) -> Path:
    ledger = {"path": "usage.db", "flush_interval_seconds": flush_interval}
    return write_config(tmp_path, {**DEMO_CONFIG, "ledger": ledger})


def test_sigterm_mid_load_keeps_the_row_of_every_answer(tmp_path: Path) -> None:
    # No batch fills and no interval ends before the signal: only the drain writes rows.
    config = ledger_config(tmp_path, flush_interval=60)
    started = time.time()
    with serving("--config", str(config)) as sidecar, Load(sidecar) as load:
        load.wait(ANSWERS)
        sidecar.popen.send_signal(signal.SIGTERM)
        assert sidecar.popen.wait(timeout=20) in (0, -signal.SIGTERM)
    rows = ledger_rows(config.parent / "usage.db")
    assert_well_formed(rows, started)
    assert len(rows) >= len(load.received) >= ANSWERS
    missing = set(load.received) - {row["request_id"] for row in rows}
    assert not missing, f"{len(missing)} of {len(load.received)} answers have no row"


def test_sigkill_mid_load_leaves_a_ledger_that_reopens_and_appends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ledger_config(tmp_path, flush_interval=0.2)
    started = time.time()
    path = config.parent / "usage.db"
    with serving("--config", str(config)) as sidecar, Load(sidecar) as load:
        load.wait(ANSWERS)
        sidecar.popen.kill()
        sidecar.popen.wait(timeout=10)
    before = ledger_rows(path)
    assert_well_formed(before, started)
    assert 0 < len(before) <= len(load.received) + CLIENTS

    with serving("--config", str(config)) as sidecar:
        client = sdk(sidecar)
        for model in ("auto", "frontier", "onprem"):
            client.chat.completions.create(model=model, messages=HELLO)
    after = ledger_rows(path)
    assert [tuple(row) for row in after[: len(before)]] == [tuple(row) for row in before]
    assert [row["tier"] for row in after[len(before) :]] == ["light", "frontier", "onprem"]
    assert_well_formed(after, started)

    assert main(["report", "--ledger", str(path), "--since", "all", "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["requests"] == len(after)
    assert total["input_tokens"] == sum(row["input_tokens"] or 0 for row in after)
    assert total["output_tokens"] == sum(row["output_tokens"] or 0 for row in after)
    assert total["cost_usd"] == pytest.approx(sum(row["cost_usd"] or 0 for row in after))
    assert total["errors"] == sum(row["status"] != 200 for row in after)


def test_an_unwritable_ledger_is_reported_at_plugins_and_the_sidecar_serves(
    tmp_path: Path,
) -> None:
    (tmp_path / "readonly").write_text("a file where the ledger's directory should be")
    config = {**DEMO_CONFIG, "ledger": {"path": "readonly/usage.db"}}
    with running_sidecar(config, tmp_path) as sidecar:
        failed = httpx.get(f"{sidecar.url}/-/plugins").json()["failed"]
        answer = sdk(sidecar).chat.completions.create(model="auto", messages=HELLO)
    assert answer.choices[0].message.content
    (failure,) = failed
    assert (failure["plugin"], failure["stage"]) == ("sidecar.ledger", "startup")
    assert f"ledger.path: cannot open {tmp_path / 'readonly' / 'usage.db'}" in failure["error"]


def test_stats_serves_the_report_live(tmp_path: Path) -> None:
    config = {**DEMO_CONFIG, "ledger": {"flush_interval_seconds": 60}}
    with running_sidecar(config, tmp_path) as sidecar:
        client = sdk(sidecar)
        for model in ("light", "light", "frontier"):
            client.chat.completions.create(model=model, messages=HELLO)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=HELLO)
        # Rows are batched for a minute; /-/stats flushes first, so it is current.
        stats = httpx.get(f"{sidecar.url}/-/stats", timeout=10).json()
        bad = httpx.get(f"{sidecar.url}/-/stats", params={"since": "yesterday"})
        everything = httpx.get(f"{sidecar.url}/-/stats", params={"since": "all"}).json()
    tiers = {group["tier"]: group for group in stats["tiers"]}
    assert stats["total"]["requests"] == 4
    assert tiers["light"]["requests"] == 2
    assert tiers["light"]["share"] == 0.5
    assert tiers["frontier"]["requests"] == 1
    assert tiers[None]["errors"] == 1
    assert stats["ledger_stats"]["written"] == 4
    assert everything["total"]["requests"] == 4
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("since: ")


def test_stats_without_a_ledger_says_why(tmp_path: Path) -> None:
    config = {**DEMO_CONFIG, "ledger": {"enabled": False}}
    with running_sidecar(config, tmp_path) as sidecar:
        response = httpx.get(f"{sidecar.url}/-/stats")
    assert response.status_code == 503
    assert "ledger.enabled is false" in response.json()["error"]["message"]
    assert not (tmp_path / "sidecar-ledger.db").exists()
