"""The credential an Azure request carries: `api-key: <key>` or `authorization: Bearer <token>`.

A credential from `api_key_env` is read once, when the provider is built. One from
`api_key_file` is read then too, and read again whenever the file changes (one `stat` per
request tells), so a rotated key or an Entra ID token that a refresher rewrites before it
expires is used without a restart. While the file is missing, empty or unreadable, the
last good value is kept.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sidecar import ConfigError, ConfigProblem, ProviderSettings

from .options import ENTRA_ID

logger = logging.getLogger("sidecar.azure_openai")

_Signature = tuple[int, int, int]


class Credential:
    def __init__(self, settings: ProviderSettings, auth: str) -> None:
        self._entra = auth == ENTRA_ID
        self._file = None if settings.api_key_env else settings.api_key_file
        self._source = (
            f"env {settings.api_key_env}" if settings.api_key_env else f"file {self._file}"
        )
        self._signature = _signature(self._file) if self._file else None
        secret = settings.api_key()  # raises ConfigError naming the key path
        if secret is None:
            raise ConfigError(
                [ConfigProblem(f"providers.{settings.name}.api_key_env", "no credential given")]
            )
        self._header = self._header_of(secret)
        self._failing = False

    def __repr__(self) -> str:  # never the secret
        kind = "entra_id" if self._entra else "api_key"
        return f"Credential({kind}, {self._source})"

    def header(self) -> dict[str, str]:
        """The header to send now; re-reads the file first if it changed."""
        if self._file is not None:
            self._refresh(self._file)
        return self._header

    def _header_of(self, secret: str) -> dict[str, str]:
        if self._entra:
            return {"authorization": f"Bearer {secret}"}
        return {"api-key": secret}

    def _refresh(self, path: Path) -> None:
        signature = _signature(path)
        if signature == self._signature:
            return
        if signature is None:
            self._fail(f"cannot read {path}: it is missing")
            return
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(f"cannot read {path}: {type(exc).__name__}")
            return
        if not secret:
            self._fail(f"{path} is empty")
            return
        self._signature = signature
        self._header = self._header_of(secret)
        self._failing = False

    def _fail(self, reason: str) -> None:
        if not self._failing:  # once per bad spell, not once per request
            logger.warning("%s; the previous credential stays in use", reason)
        self._failing = True


def _signature(path: Path) -> _Signature | None:
    """What changes when the file is rewritten in place or replaced (a Kubernetes secret
    volume swaps a symlink, so the inode changes)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
