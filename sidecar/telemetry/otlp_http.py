"""An OTLP/HTTP (protobuf) span exporter that sends what `protobuf.encode_spans` writes.

Configured by the same variables, read the same way, as the SDK's
`opentelemetry-exporter-otlp-proto-http` span exporter, which it replaces for traces
over http/protobuf because that exporter's encoding costs ~3-4 times more CPU per span
(see `protobuf`):

- `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as given), else `OTEL_EXPORTER_OTLP_ENDPOINT`
  with `/v1/traces` appended, else `http://localhost:4318/v1/traces`;
- `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` (`key=value,...`, values URL-encoded);
- `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, in seconds as the Python SDK reads it (10);
- `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`: `gzip`, `deflate` or `none`;
- `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` (CA bundle), `..._CLIENT_CERTIFICATE` and
  `..._CLIENT_KEY` (mutual TLS).

Retries as the SDK's: 429, 502, 503 and 504 and connection errors, up to six attempts
with exponential backoff (1, 2, 4 ... s, ±20% jitter) or the server's `Retry-After`,
within the timeout; shutdown cuts a wait short. Failures are logged (never the headers:
they may carry credentials).
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import ssl
import threading
import time
import zlib
from collections.abc import Mapping, Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.re import parse_env_headers

from ..errors import ConfigError, ConfigProblem
from .protobuf import encode_spans

logger = logging.getLogger("sidecar")

DEFAULT_ENDPOINT = "http://localhost:4318/"
TRACES_PATH = "v1/traces"
DEFAULT_TIMEOUT = 10.0
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 6
JITTER = 0.2
COMPRESSIONS = ("gzip", "deflate", "none")


def _variable(env: Mapping[str, str], name: str) -> tuple[str, str]:
    """(variable, value): the traces-specific variable, else the general one."""
    specific = f"OTEL_EXPORTER_OTLP_TRACES_{name}"
    if env.get(specific):
        return specific, env[specific].strip()
    general = f"OTEL_EXPORTER_OTLP_{name}"
    return general, env.get(general, "").strip()


class OtlpHttpSpanExporter(SpanExporter):
    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        compression: str = "none",
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.compression = compression
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if compression != "none":
            self._headers["Content-Encoding"] = compression
        # A plain http:// collector needs no TLS context: creating one loads the CA bundle
        # (~45 ms and ~1 MiB at start-up) for nothing.
        if not endpoint.startswith("https://"):
            verify = False
        self._client = httpx.Client(verify=verify, timeout=timeout)
        self._stopping = threading.Event()

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> OtlpHttpSpanExporter:
        """Raises ConfigError naming the variable whose value is wrong."""
        env = os.environ if env is None else env
        problems: list[ConfigProblem] = []
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if not endpoint:
            base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
            endpoint = (base if base.endswith("/") else base + "/") + TRACES_PATH
        if not endpoint.startswith(("http://", "https://")):
            problems.append(
                ConfigProblem(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
                    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                    else "OTEL_EXPORTER_OTLP_ENDPOINT",
                    f"{endpoint!r} is not an http:// or https:// URL",
                )
            )
        _, raw_headers = _variable(env, "HEADERS")
        headers = parse_env_headers(raw_headers, liberal=True) if raw_headers else {}
        variable, raw = _variable(env, "TIMEOUT")
        timeout = DEFAULT_TIMEOUT
        if raw:
            try:
                timeout = float(raw)
                if timeout <= 0:
                    raise ValueError
            except ValueError:
                problems.append(ConfigProblem(variable, f"{raw!r} is not a positive number"))
        variable, compression = _variable(env, "COMPRESSION")
        compression = compression.lower() or "none"
        if compression not in COMPRESSIONS:
            problems.append(
                ConfigProblem(
                    variable,
                    f"unsupported compression {compression!r} "
                    f"(supported: {', '.join(COMPRESSIONS)})",
                )
            )
        verify: ssl.SSLContext | bool = True
        certificate_variable, certificate = _variable(env, "CERTIFICATE")
        client_variable, client_certificate = _variable(env, "CLIENT_CERTIFICATE")
        _, client_key = _variable(env, "CLIENT_KEY")
        if certificate or client_certificate:
            try:
                verify = ssl.create_default_context(cafile=certificate or None)
                if client_certificate:
                    verify.load_cert_chain(client_certificate, client_key or None)
            except (OSError, ssl.SSLError) as error:
                problems.append(
                    ConfigProblem(
                        client_variable if client_certificate else certificate_variable,
                        f"cannot load: {error}",
                    )
                )
        if problems:
            raise ConfigError(problems, "environment")
        return cls(
            endpoint, headers=headers, timeout=timeout, compression=compression, verify=verify
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopping.is_set():
            return SpanExportResult.FAILURE
        try:
            body = encode_spans(spans)
        except Exception:
            logger.exception("telemetry: %d spans could not be encoded; dropped", len(spans))
            return SpanExportResult.FAILURE
        if self.compression == "gzip":
            body = gzip.compress(body)
        elif self.compression == "deflate":
            body = zlib.compress(body)
        return self._send(body, len(spans))

    def _send(self, body: bytes, count: int) -> SpanExportResult:
        deadline = time.monotonic() + self.timeout
        for attempt in range(MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            wait = 2**attempt * random.uniform(1 - JITTER, 1 + JITTER)
            try:
                response = self._client.post(
                    self.endpoint,
                    content=body,
                    headers=self._headers,
                    timeout=max(remaining, 0.001),
                )
            except httpx.TransportError as error:
                status: int | None = None
                reason = f"{type(error).__name__}: {error}"
            else:
                if 200 <= response.status_code < 300:
                    return SpanExportResult.SUCCESS
                status, reason = response.status_code, response.reason_phrase
                if status not in RETRYABLE:
                    logger.error(
                        "Failed to export %d spans to %s: %s %s",
                        count,
                        self.endpoint,
                        status,
                        reason,
                    )
                    return SpanExportResult.FAILURE
                wait = _retry_after(response.headers.get("retry-after"), wait)
            if attempt + 1 == MAX_ATTEMPTS or wait > deadline - time.monotonic():
                break
            logger.warning(
                "Transient error exporting spans to %s (%s), retrying in %.2f s",
                self.endpoint,
                status or reason,
                wait,
            )
            if self._stopping.wait(wait):
                break
        logger.error(
            "Failed to export %d spans to %s: %s (gave up: timeout, retries or shutdown)",
            count,
            self.endpoint,
            status or reason,
        )
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._stopping.set()
        self._client.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # nothing is buffered here


def _retry_after(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        return default  # an HTTP date: rare from collectors; the backoff will do
