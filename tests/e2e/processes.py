"""`sidecar` as a child process: the CLI run once, or `sidecar serve` on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ..support import REPO
from .conftest import EXPLICIT_MODEL_POLICY


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


class Process:
    def __init__(self, popen: subprocess.Popen[str], url: str, log: list[str]) -> None:
        self.popen = popen
        self.url = url
        self.log = log
        self.closers: list[Callable[[], object]] = []


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Process]:
    """`sidecar serve --port 0 ...`; the port is read from uvicorn's start-up line."""
    popen = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    assert popen.stderr is not None
    log: list[str] = []
    url = None
    deadline = time.monotonic() + 20
    for line in popen.stderr:
        log.append(line)
        match = re.search(r"Uvicorn running on (http://\S+)", line)
        if match:
            url = match.group(1)
            break
        if time.monotonic() > deadline:
            break
    if url is None:
        popen.kill()
        raise AssertionError("sidecar did not start:\n" + "".join(log) + popen.stderr.read())
    # Keep draining the log so the child never blocks on a full pipe.
    drain = threading.Thread(target=lambda: log.extend(popen.stderr or []), daemon=True)
    drain.start()
    process = Process(popen, url, log)
    try:
        yield process
    finally:
        for close in process.closers:
            close()
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        drain.join(timeout=5)
        popen.stderr.close()


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config))
    policies = tmp_path / "policies"
    if not policies.exists():
        policies.mkdir()
        (policies / "20-explicit-model.yaml").write_text(EXPLICIT_MODEL_POLICY)
    return path
