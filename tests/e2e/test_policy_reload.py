"""Policies edited live under a running sidecar: every way a file can change."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support import DEMO_CONFIG, ServerThread
from .conftest import running_sidecar

CONFIG = {**DEMO_CONFIG, "routing": {"default_tier": "light", "policies": "policies"}}
IN_FORCE_WITHIN = 1.0


def policy(tier: str, when: str = "request.tokens >= 0") -> str:
    return f"when: {when}\nroute: {{tier: {tier}}}\n"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    return directory


@pytest.fixture
def sidecar(tmp_path: Path, policies: Path) -> Iterator[ServerThread]:
    with running_sidecar(CONFIG, tmp_path) as server:
        yield server


def tier(sidecar: ServerThread) -> str:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    response = httpx.post(f"{sidecar.url}/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-sidecar-tier"]


def wait_for_tier(sidecar: ServerThread, expected: str) -> float:
    """Seconds until requests are served by `expected`; fails after IN_FORCE_WITHIN."""
    start = time.monotonic()
    while True:
        if tier(sidecar) == expected:
            return time.monotonic() - start
        if time.monotonic() - start > IN_FORCE_WITHIN:
            pytest.fail(f"tier {expected!r} not in force within {IN_FORCE_WITHIN} s")
        time.sleep(0.01)


def status(sidecar: ServerThread) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{sidecar.url}/-/policies").json()
    return result


def test_write_edit_rename_over_and_delete(sidecar: ServerThread, policies: Path) -> None:
    assert tier(sidecar) == "light"  # no policies: the default tier

    (policies / "50-route.yaml").write_text(policy("frontier"))
    wait_for_tier(sidecar, "frontier")

    (policies / "50-route.yaml").write_text(policy("onprem"))  # edited in place
    wait_for_tier(sidecar, "onprem")

    # An editor's atomic save: write a temporary file, rename it over the old one.
    temporary = policies / ".50-route.yaml.tmp"
    temporary.write_text(policy("frontier"))
    os.replace(temporary, policies / "50-route.yaml")
    wait_for_tier(sidecar, "frontier")

    (policies / "50-route.yaml").unlink()
    wait_for_tier(sidecar, "light")
    assert status(sidecar)["policies"] == []
    assert status(sidecar)["reloads"] == 4


def test_configmap_symlink_swap(sidecar: ServerThread, policies: Path) -> None:
    """Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink."""

    def publish(version: str, tier_name: str) -> None:
        data = policies / f"..{version}"
        data.mkdir()
        (data / "50-route.yaml").write_text(policy(tier_name))
        (policies / "..data_tmp").symlink_to(data.name)
        os.replace(policies / "..data_tmp", policies / "..data")

    publish("2026_11_27_01", "frontier")
    (policies / "50-route.yaml").symlink_to("..data/50-route.yaml")
    wait_for_tier(sidecar, "frontier")

    publish("2026_11_27_02", "onprem")
    shutil.rmtree(policies / "..2026_11_27_01")
    wait_for_tier(sidecar, "onprem")


def test_broken_file_keeps_the_last_good_set(sidecar: ServerThread, policies: Path) -> None:
    (policies / "50-route.yaml").write_text(policy("frontier"))
    wait_for_tier(sidecar, "frontier")
    good_version = status(sidecar)["version"]

    (policies / "40-broken.yaml").write_text("when: request.tokens >\nroute: {tier: onprem}\n")
    deadline = time.monotonic() + IN_FORCE_WITHIN
    while status(sidecar)["last_error"] is None:
        assert time.monotonic() < deadline, "the broken file was not noticed"
        time.sleep(0.01)
    shown = status(sidecar)
    assert shown["version"] == good_version
    assert shown["reload_failures"] >= 1
    assert shown["last_error"][0].startswith("40-broken.yaml:1:")
    assert tier(sidecar) == "frontier"

    (policies / "40-broken.yaml").write_text(policy("onprem"))
    wait_for_tier(sidecar, "onprem")
    assert status(sidecar)["last_error"] is None


@pytest.fixture
def loaded_sidecar(tmp_path: Path, policies: Path) -> Iterator[ServerThread]:
    # The load below runs in this process: four client threads and the policy reloads share
    # the server's interpreter lock, and a classifier can wait well past its 50 ms budget
    # for it (one did, 143 ms on "hi", on a busy CI machine). The budget is for a core of
    # its own; this test is about reloads, so it gets a budget that only a hang overruns.
    config = {**CONFIG, "classifiers": {"budget_ms": 5000}}
    with running_sidecar(config, tmp_path) as server:
        yield server


@pytest.mark.slow
def test_no_request_fails_across_50_reloads_under_load(
    loaded_sidecar: ServerThread, policies: Path
) -> None:
    sidecar = loaded_sidecar
    failures: list[str] = []
    served = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal served
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=sidecar.url) as client:
            while not stop.is_set():
                response = client.post("/v1/chat/completions", json=body)
                if response.status_code != 200:
                    failures.append(response.text)
                served += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for index in range(50):
            tier_name = ("frontier", "onprem")[index % 2]
            (policies / "50-route.yaml").write_text(
                policy(tier_name, f"request.tokens >= {-index}")
            )
            wait_for_tier(sidecar, tier_name)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert status(sidecar)["reloads"] >= 50  # a half-written file may load on its own
    assert served > 100


def test_policies_endpoint_describes_the_set(sidecar: ServerThread, policies: Path) -> None:
    (policies / "10-ml.yaml").write_text(
        "description: The ML team gets the big model\n"
        'when: \'"x-team" in request.headers && request.headers["x-team"] == "ml"\'\n'
        "route: {tier: frontier}\nfallback: [light]\n"
    )
    deadline = time.monotonic() + IN_FORCE_WITHIN
    while not status(sidecar)["policies"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (described,) = status(sidecar)["policies"]
    assert described == {
        "name": "10-ml",
        "file": "10-ml.yaml",
        "description": "The ML team gets the big model",
        "when": '"x-team" in request.headers && request.headers["x-team"] == "ml"',
        "route": "tier frontier",
        "fallback": ["light"],
        "confidential": False,
        "enabled": True,
    }
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    ml = httpx.post(f"{sidecar.url}/v1/chat/completions", json=body, headers={"x-team": "ml"})
    assert (ml.headers["x-sidecar-tier"], ml.headers["x-sidecar-policy"]) == ("frontier", "10-ml")
    assert tier(sidecar) == "light"
