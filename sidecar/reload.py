"""Keep the policy set current: load, swap on success, keep the last good set on failure.

The directory is watched, not the files, so an editor's atomic save (write a temporary
file, rename it over) and a Kubernetes ConfigMap update (a `..data` symlink swap) are both
seen. A periodic check of the files' hash is the safety net for file systems where
change events are lost; it does nothing when nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from . import cel
from .activation import VARIABLES
from .policies import (
    PolicyError,
    PolicyFile,
    PolicyProblem,
    PolicySet,
    build_policy_set,
    read_directory,
    version_of,
)
from .settings import Settings

logger = logging.getLogger("sidecar.policies")

DEBOUNCE_MS = 150
"""Changes closer together than this are loaded as one (an editor's save is several)."""
POLL_SECONDS = 5.0


@dataclass
class PolicyStore:
    """The current PolicySet and the history of loading it."""

    settings: Settings
    engine: str
    functions: Callable[[], Mapping[str, Callable[..., Any]]]
    """Plugin CEL functions, asked for again at every load."""
    signal_outputs: Mapping[str, Mapping[str, str]]
    samples: Callable[[cel.Environment], list[Mapping[str, Any]]]
    current: PolicySet = field(init=False)
    reloads: int = 0
    failures: int = 0
    last_error: list[PolicyProblem] | None = None
    last_error_at: float | None = None

    @property
    def directory(self) -> Path:
        return self.settings.routing.policies

    def load(self, files: list[PolicyFile] | None = None) -> PolicySet:
        """Build a policy set from the directory's files; raises PolicyError."""
        if files is None:
            files = read_directory(self.directory)
        try:
            environment = cel.Environment(self.engine, VARIABLES, self.functions())
        except cel.CelError as exc:
            raise PolicyError(
                [PolicyProblem("register_cel_functions", None, None, exc.message)]
            ) from None
        return build_policy_set(
            files, self.settings, environment, self.samples(environment), self.signal_outputs
        )

    def load_first(self) -> PolicySet:
        self.current = self.load()
        for warning in self.current.warnings:
            logger.warning("%s", warning)
        return self.current

    def reload(self) -> bool:
        """Load again; swap if the files changed and load cleanly. True if swapped."""
        try:
            files = read_directory(self.directory)
            if version_of(files) == self.current.version:
                return False
            policy_set = self.load(files)
        except PolicyError as exc:
            self.failures += 1
            self.last_error = exc.problems
            self.last_error_at = time.time()
            logger.error("policy reload rejected, the last good set keeps serving:\n%s", exc)
            return False
        self.current = policy_set
        self.reloads += 1
        self.last_error = None
        for warning in policy_set.warnings:
            logger.warning("%s", warning)
        logger.info(
            "policies reloaded: version %s, %d policies",
            policy_set.version,
            len(policy_set.policies),
        )
        return True

    async def watch(self, stop: asyncio.Event, poll_seconds: float = POLL_SECONDS) -> None:
        """Reload on every change in the directory, and every `poll_seconds` if the hash moved."""
        await asyncio.gather(self._watch_events(stop), self._poll(stop, poll_seconds))

    async def _watch_events(self, stop: asyncio.Event) -> None:
        # watchfiles' blocking watcher in a thread of its own, not `awatch`: that one runs
        # the same watcher through anyio, whose asyncio backend (~25 ms, ~1.5 MiB) would
        # otherwise be imported at start-up for this alone.
        stopping = threading.Event()

        async def relay() -> None:
            await stop.wait()
            stopping.set()

        relay_task = asyncio.create_task(relay())
        try:
            await asyncio.to_thread(self._watch_blocking, stopping)
        except Exception:  # the poll goes on even if the watcher cannot
            logger.exception("watching %s failed; falling back to polling", self.directory)
        finally:
            stopping.set()
            relay_task.cancel()

    def _watch_blocking(self, stopping: threading.Event) -> None:
        for _ in watchfiles.watch(
            self.directory,
            watch_filter=None,
            debounce=DEBOUNCE_MS * 2,
            step=DEBOUNCE_MS // 3,
            stop_event=stopping,
            recursive=False,
        ):
            self.reload()

    async def _poll(self, stop: asyncio.Event, seconds: float) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), seconds)
            except TimeoutError:
                await asyncio.to_thread(self.reload)

    def describe(self) -> dict[str, Any]:
        """What `GET /-/policies` shows."""
        current = self.current
        return {
            "directory": str(self.directory),
            "version": current.version,
            "loaded_at": current.loaded_at,
            "engine": current.engine,
            "policies": [
                {
                    "name": p.name,
                    "file": p.file,
                    "description": p.description,
                    "when": p.when,
                    "route": str(p.route),
                    "fallback": list(p.fallback),
                    "confidential": p.confidential,
                    "enabled": p.enabled,
                }
                for p in current.policies
            ],
            "warnings": list(current.warnings),
            "reloads": self.reloads,
            "reload_failures": self.failures,
            "last_error": [str(p) for p in self.last_error] if self.last_error else None,
            "last_error_at": self.last_error_at,
        }
