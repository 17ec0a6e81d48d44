"""The exception tree, and the one function that turns an error into OpenAI's error body.

    SidecarError
    ├── ConfigError                  bad sidecar.yaml or plugin options; lists every problem
    └── RequestFailed                anything that ends a request with an error response
        ├── InvalidRequest           400  malformed JSON, missing or mistyped fields
        ├── PayloadTooLarge          413  body over server.max_body_bytes
        ├── ModelNotFound            404  `model` is not auto, a tier or a model id
        ├── UpstreamStatusError      the upstream's own 4xx/5xx, passed on with its status
        ├── UpstreamUnavailable      502/504  connect error, timeout, reset, malformed answer
        └── NoTargetAvailable        503  nothing left that may serve the request

Lower-layer errors (httpx, aiohttp, json) are translated once, where they enter: in the
provider plugins and in `wire/`. Only `RequestFailed` reaches the client, always as
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SidecarError(Exception):
    """Base of every error the sidecar raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in the configuration, at a dotted key path (`tiers.mid[1]`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(SidecarError):
    """The configuration is invalid; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{where}{len(problems)} configuration error(s):\n{lines}")


class RequestFailed(SidecarError):
    """An error that ends a request; rendered to the client in OpenAI's shape."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


class InvalidRequest(RequestFailed):
    status_code = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status_code = 413
    code = "request_too_large"


class ModelNotFound(InvalidRequest):
    status_code = 404
    code = "model_not_found"


class UpstreamStatusError(RequestFailed):
    """The upstream answered with an error status; its status and error body are passed on."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status_code=status_code, headers=headers)
        self.error_type = error_type


class UpstreamUnavailable(RequestFailed):
    """The upstream could not be reached or gave no usable answer."""

    status_code = 502
    error_type = "upstream_error"


class NoTargetAvailable(RequestFailed):
    status_code = 503
    error_type = "service_unavailable"
    code = "no_target_available"


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object; every error body the sidecar writes comes from here."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_json(exc: RequestFailed) -> bytes:
    return json.dumps(exc.body(), separators=(",", ":")).encode()


def upstream_status_error(
    status_code: int, body: bytes, provider: str, headers: Mapping[str, str] | None = None
) -> UpstreamStatusError:
    """Translate an upstream error response into the OpenAI shape, keeping what it said.

    OpenAI-compatible servers mostly send the right shape already; vLLM sends an integer
    `code`, some servers send `{"detail": ...}` or plain text. Whatever came, the client
    gets strings where the SDK expects strings.
    """
    message = ""
    error_type = "upstream_error" if status_code >= 500 else "invalid_request_error"
    param: str | None = None
    code: str | None = None
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        # Google and Azure put a status in `status` (a string, or Azure's number) and
        # leave `type` empty; a number is no error type a client could check.
        named = error.get("type") or error.get("status")
        error_type = named if isinstance(named, str) and not named.isdigit() else error_type
        param = _optional_str(error.get("param"))
        code = _optional_str(error.get("code"))
    elif isinstance(error, str):
        message = error
    elif isinstance(payload, dict) and "detail" in payload:
        detail = payload["detail"]  # FastAPI-style servers; a validation error is a list
        message = detail if isinstance(detail, str) else json.dumps(detail)
    if not message:
        text = body[:200].decode("utf-8", "replace").strip()
        message = text or f"upstream returned HTTP {status_code}"
    return UpstreamStatusError(
        f"{message}",
        status_code=status_code,
        error_type=error_type,
        param=param,
        code=code,
        headers={**(headers or {}), "x-sidecar-upstream": provider},
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def error_kind(exc: RequestFailed) -> str:
    """A short, low-cardinality name for a failure, as telemetry and the ledger record it:
    the upstream's HTTP status for an error status, else the error's code."""
    if isinstance(exc, UpstreamStatusError):
        return str(exc.status_code)
    return exc.code or exc.error_type
