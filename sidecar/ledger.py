"""The usage ledger: one SQLite row per request, written off the event loop.

`request_finished` only puts the record on a bounded queue (`put_nowait`); one writer
thread per ledger turns records into rows and commits them in batches, at least every
`ledger.flush_interval_seconds` and as soon as `BATCH_SIZE` rows are waiting. A full queue
drops the row and counts it: a slow disk never slows a request. Shutdown drains the queue
within `CLOSE_TIMEOUT` seconds. Rows hold counts, prices and routing, never prompt text.

The file is in WAL mode, so `sidecar report` and other sidecars may read it while it is
written, and a killed process leaves it consistent (the last uncommitted batch is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import SidecarError
from .hookspecs import hookimpl
from .plugins import Plugins
from .record import RequestRecord
from .settings import LedgerSettings, Settings

PLUGIN_NAME = "sidecar.ledger"
SCHEMA_VERSION = 1
TABLE = "requests"
BATCH_SIZE = 500
"""Rows that make the writer commit without waiting for the flush interval."""
CLOSE_TIMEOUT = 5.0
"""The longest shutdown waits for queued rows to be committed."""
DROP_LOG_INTERVAL = 10.0
"""At most one warning per this many seconds about dropped rows or failed writes."""
BUSY_TIMEOUT = 5.0
"""How long a write waits for another process holding the file's write lock."""

# (name, SQL type); the order is the order of the values `_row` returns.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("request_id", "TEXT NOT NULL"),
    ("time", "REAL NOT NULL"),
    ("policy", "TEXT"),
    ("tier", "TEXT"),
    ("model", "TEXT"),
    ("provider", "TEXT"),
    ("requested_model", "TEXT NOT NULL"),
    ("stream", "INTEGER NOT NULL"),
    ("input_tokens", "INTEGER"),
    ("output_tokens", "INTEGER"),
    ("cached_input_tokens", "INTEGER"),
    ("cache_write_input_tokens", "INTEGER"),
    ("cost_usd", "REAL"),
    ("baseline_cost_usd", "REAL"),
    ("duration_s", "REAL NOT NULL"),
    ("attempts", "INTEGER NOT NULL"),
    ("status", "INTEGER NOT NULL"),
    ("error_type", "TEXT"),
    ("fallback_reason", "TEXT"),
    ("confidential", "INTEGER NOT NULL"),
)
_COLUMN_NAMES = ", ".join(name for name, _ in COLUMNS)
_INSERT = f"INSERT INTO {TABLE} ({_COLUMN_NAMES}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, "
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    + ")",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_time ON {TABLE} (time)",
)

logger = logging.getLogger("sidecar.ledger")


class LedgerError(SidecarError):
    """The ledger file cannot be opened, created or read."""


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


def _row(record: RequestRecord) -> tuple[Any, ...]:
    usage = record.usage
    return (
        record.request_id,
        record.started_at,
        record.policy,
        record.tier,
        record.model_id,
        record.provider,
        record.requested_model,
        int(record.stream),
        usage.input_tokens if usage else None,
        usage.output_tokens if usage else None,
        usage.cached_input_tokens if usage else None,
        usage.cache_write_input_tokens if usage else None,
        record.cost_usd,
        record.baseline_cost_usd,
        record.duration_s,
        record.attempts,
        record.status,
        record.error_type,
        record.fallback_reason,
        int(record.confidential),
    )


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if missing) a ledger file for writing, with the current schema.

    Raises LedgerError naming the path and `ledger.path`.
    """
    connection: sqlite3.Connection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The writer thread uses the connection from then on, and only it.
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL loses no committed row when the process dies, only on power loss.
        connection.execute("PRAGMA synchronous=NORMAL")
        # IMMEDIATE takes the write lock now: a read-only file or directory fails here, at
        # start-up, rather than on the first batch.
        connection.execute("BEGIN IMMEDIATE")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            connection.execute("ROLLBACK")
            raise LedgerError(
                f"ledger.path: {path} has ledger schema version {version}, newer than "
                f"this sidecar's ({SCHEMA_VERSION}); point ledger.path at another file"
            )
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except (OSError, sqlite3.Error) as exc:
        if connection is not None:
            connection.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LedgerError(
            f"ledger.path: cannot open {path}: {reason} (make it writable, point ledger.path "
            "at a writable volume, or set ledger.enabled: false)"
        ) from None
    except LedgerError:
        if connection is not None:
            connection.close()
        raise
    return connection


class Ledger:
    """One ledger file, its bounded queue and its writer thread.

    Build with `Ledger.open(settings.ledger)`; `submit` from the event loop, `flush`,
    `stats` and `close` from anywhere (they may block, so not from the event loop).
    """

    def __init__(
        self,
        settings: LedgerSettings,
        *,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = settings.path
        self.flush_interval = settings.flush_interval_seconds
        self.batch_size = batch_size
        self._clock = clock
        self._connection = open_database(settings.path)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=settings.queue_size)
        self._thread = threading.Thread(
            target=self._run, name=f"ledger {settings.path.name}", daemon=True
        )
        self._closed = False
        self.written = 0
        self.dropped = 0
        """Rows lost to a full queue (or submitted after close)."""
        self.failed = 0
        """Rows lost to a failed write (disk full, file removed ...)."""
        self._last_warning = -math.inf

    @classmethod
    def open(cls, settings: LedgerSettings) -> Ledger:
        ledger = cls(settings)
        ledger.start()
        return ledger

    def start(self) -> None:
        self._thread.start()

    def submit(self, record: RequestRecord) -> bool:
        """Queue a record without waiting; False (and counted) when the queue is full."""
        if not self._closed:
            try:
                self._queue.put_nowait(record)
                return True
            except queue.Full:
                pass
        self.dropped += 1
        self._warn(
            "ledger: queue full (ledger.queue_size %d), %d rows dropped so far",
            self._queue.maxsize,
            self.dropped,
        )
        return False

    def flush(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Block until every row submitted before the call is committed; False on timeout."""
        if self._closed or not self._thread.is_alive():
            return False
        marker = _Flush()
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(max(0.0, deadline - time.monotonic()))

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "queued": self._queue.qsize(),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
        }

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Commit what is queued and stop, waiting at most `timeout` seconds.

        Returns False when rows were left unwritten (logged with their number)."""
        if self._closed:
            return True
        self._closed = True
        if not self._thread.is_alive():
            self._connection.close()
            return True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):  # then the join below times out, and says so
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning(
                "ledger: %d rows not written to %s within %.1fs of shutdown",
                self._queue.qsize(),
                self.path,
                timeout,
            )
            return False
        return True

    def _run(self) -> None:
        batch: list[RequestRecord] = []
        deadline = math.inf
        try:
            while True:
                wait = None if not batch else max(0.0, deadline - time.monotonic())
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    item = None  # the flush interval is over
                if isinstance(item, RequestRecord):
                    if not batch:
                        deadline = time.monotonic() + self.flush_interval
                    batch.append(item)
                    if len(batch) < self.batch_size:
                        continue
                self._write(batch)
                batch = []
                if isinstance(item, _Flush):
                    item.done.set()
                elif item is _STOP:
                    return
        finally:
            self._connection.close()

    def _write(self, batch: Sequence[RequestRecord]) -> None:
        if not batch:
            return
        try:
            rows = [_row(record) for record in batch]
            with self._connection:
                self._connection.execute("BEGIN")
                self._connection.executemany(_INSERT, rows)
        except Exception as exc:  # the writer must outlive a bad batch or a full disk
            self.failed += len(batch)
            self._warn("ledger: writing %d rows to %s failed: %s", len(batch), self.path, exc)
            return
        self.written += len(batch)

    def _warn(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last_warning >= DROP_LOG_INTERVAL:
            self._last_warning = now
            logger.warning(message, *args)


class LedgerPlugin:
    """The built-in plugin: one per app, so two servers in one process keep two ledgers."""

    def __init__(self) -> None:
        self.ledger: Ledger | None = None

    @hookimpl
    async def startup(self, settings: Settings) -> None:
        if settings.ledger.enabled:
            self.ledger = await asyncio.to_thread(Ledger.open, settings.ledger)

    @hookimpl
    async def shutdown(self) -> None:
        ledger, self.ledger = self.ledger, None
        if ledger is not None:
            await asyncio.to_thread(ledger.close)

    @hookimpl
    def request_finished(self, record: RequestRecord) -> None:
        if self.ledger is not None:
            self.ledger.submit(record)


def create_plugin() -> LedgerPlugin:
    return LedgerPlugin()


def ledger_of(plugins: Plugins) -> Ledger | None:
    """The running ledger of an app, or None (disabled, failed to open, or stopped)."""
    plugin = plugins.manager.get_plugin(PLUGIN_NAME)
    return plugin.ledger if isinstance(plugin, LedgerPlugin) else None
