"""The Kubernetes example stays valid: its embedded configuration parses, and every path
the sidecar writes to is on a writable volume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sidecar.settings import parse_settings

from .support import REPO

MANIFEST = REPO / "deploy" / "kubernetes" / "sidecar.yaml"


def _documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def test_the_embedded_configuration_is_valid(tmp_path: Path) -> None:
    (config_map,) = [
        d for d in _documents() if d["kind"] == "ConfigMap" and "sidecar.yaml" in d["data"]
    ]
    settings = parse_settings(yaml.safe_load(config_map["data"]["sidecar.yaml"]), base_dir=tmp_path)
    assert settings.ledger.path == Path("/var/lib/sidecar/ledger.db")


def test_the_ledger_directory_is_a_writable_mount() -> None:
    (deployment,) = [d for d in _documents() if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    (sidecar,) = [c for c in spec["initContainers"] if c["name"] == "llm-sidecar"]
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert not mounts["/var/lib/sidecar"].get("readOnly", False)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/var/lib/sidecar"]["name"]]
