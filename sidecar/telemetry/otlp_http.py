"""OTLP/HTTP (protobuf) exporters for spans and metrics, on the sidecar's own HTTP client.

They replace the SDK's `opentelemetry-exporter-otlp-proto-http` exporters for the
default protocol. Spans: that exporter's encoding costs ~4 times more CPU per span than
`protobuf.encode_spans`. Metrics: they are encoded by the SDK's own encoder, imported by
the first export (an export a minute costs nothing worth saving), but the SDK's exporter
module brings `requests`, `urllib3` and `charset_normalizer` into the process: ~80 ms of
start-up and ~4 MiB resident, for a client the sidecar already has (httpx).

Both are configured by the same variables, read the same way, as the SDK's exporters
(`SIGNAL` is `TRACES` or `METRICS`; the specific variable wins over the general one):

- `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT` (used as given), else `OTEL_EXPORTER_OTLP_ENDPOINT`
  with `/v1/traces` or `/v1/metrics` appended, else `http://localhost:4318/...`;
- `OTEL_EXPORTER_OTLP_[{SIGNAL}_]HEADERS` (`key=value,...`, values URL-encoded);
- `OTEL_EXPORTER_OTLP_[{SIGNAL}_]TIMEOUT`, in seconds as the Python SDK reads it (10);
- `OTEL_EXPORTER_OTLP_[{SIGNAL}_]COMPRESSION`: `gzip`, `deflate` or `none`;
- `OTEL_EXPORTER_OTLP_[{SIGNAL}_]CERTIFICATE` (CA bundle), `..._CLIENT_CERTIFICATE` and
  `..._CLIENT_KEY` (mutual TLS);
- metrics: `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (`cumulative`, `delta`,
  `lowmemory`, as the specification defines them).

Retries as the SDK's: 429, 502, 503 and 504 and connection errors, up to six attempts
with exponential backoff (1, 2, 4 ... s, ±20% jitter) or the server's `Retry-After`,
within the timeout; shutdown cuts a wait short. Failures are logged (never the headers:
they may carry credentials). Unlike the SDK, a wrong value is a configuration error that
names the variable, not a warning.
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
from typing import Any

import httpx
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.re import parse_env_headers

from ..errors import ConfigError, ConfigProblem
from .protobuf import encode_spans

logger = logging.getLogger("sidecar")

DEFAULT_ENDPOINT = "http://localhost:4318/"
PATHS = {"TRACES": "v1/traces", "METRICS": "v1/metrics"}
DEFAULT_TIMEOUT = 10.0
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 6
JITTER = 0.2
COMPRESSIONS = ("gzip", "deflate", "none")

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_DELTA = AggregationTemporality.DELTA
TEMPORALITIES: dict[str, dict[type, AggregationTemporality]] = {
    "cumulative": {},  # the reader's default for every instrument
    "delta": {
        Counter: _DELTA,
        UpDownCounter: _CUMULATIVE,
        Histogram: _DELTA,
        ObservableCounter: _DELTA,
        ObservableUpDownCounter: _CUMULATIVE,
        ObservableGauge: _CUMULATIVE,
    },
    "lowmemory": {
        Counter: _DELTA,
        UpDownCounter: _CUMULATIVE,
        Histogram: _DELTA,
        ObservableCounter: _CUMULATIVE,
        ObservableUpDownCounter: _CUMULATIVE,
        ObservableGauge: _CUMULATIVE,
    },
}


def _variable(env: Mapping[str, str], signal: str, name: str) -> tuple[str, str]:
    """(variable, value): the signal's own variable, else the general one."""
    specific = f"OTEL_EXPORTER_OTLP_{signal}_{name}"
    if env.get(specific, "").strip():
        return specific, env[specific].strip()
    general = f"OTEL_EXPORTER_OTLP_{name}"
    return general, env.get(general, "").strip()


class Sender:
    """POSTs encoded OTLP requests to one endpoint, retrying as the SDK's exporters do."""

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
        self._verify = verify
        # Made by the first export, on the exporter's thread: the first synchronous httpx
        # client imports httpcore's blocking pool (~35 ms), which start-up need not wait for.
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._stopping = threading.Event()

    def _connected(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(verify=self._verify, timeout=self.timeout)
            return self._client

    @classmethod
    def from_environment(cls, signal: str, env: Mapping[str, str] | None = None) -> Sender:
        """Raises ConfigError naming the variable whose value is wrong."""
        env = os.environ if env is None else env
        problems: list[ConfigProblem] = []
        variable = f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
        endpoint = env.get(variable, "").strip()
        if not endpoint:
            variable = "OTEL_EXPORTER_OTLP_ENDPOINT"
            base = env.get(variable, "").strip() or DEFAULT_ENDPOINT
            endpoint = (base if base.endswith("/") else base + "/") + PATHS[signal]
        if not endpoint.startswith(("http://", "https://")):
            problems.append(
                ConfigProblem(variable, f"{endpoint!r} is not an http:// or https:// URL")
            )
        _, raw_headers = _variable(env, signal, "HEADERS")
        headers = parse_env_headers(raw_headers, liberal=True) if raw_headers else {}
        variable, raw = _variable(env, signal, "TIMEOUT")
        timeout = DEFAULT_TIMEOUT
        if raw:
            try:
                timeout = float(raw)
                if timeout <= 0:
                    raise ValueError
            except ValueError:
                problems.append(ConfigProblem(variable, f"{raw!r} is not a positive number"))
        variable, compression = _variable(env, signal, "COMPRESSION")
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
        certificate_variable, certificate = _variable(env, signal, "CERTIFICATE")
        client_variable, client_certificate = _variable(env, signal, "CLIENT_CERTIFICATE")
        _, client_key = _variable(env, signal, "CLIENT_KEY")
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

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def send(self, body: bytes, what: str) -> bool:
        """POST `body` (an encoded request for `what`, e.g. "12 spans"); True once accepted."""
        if self.compression == "gzip":
            body = gzip.compress(body)
        elif self.compression == "deflate":
            body = zlib.compress(body)
        deadline = time.monotonic() + self.timeout
        status: int | None = None
        reason = ""
        client = self._connected()
        for attempt in range(MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            wait = 2**attempt * random.uniform(1 - JITTER, 1 + JITTER)
            try:
                response = client.post(
                    self.endpoint,
                    content=body,
                    headers=self._headers,
                    timeout=max(remaining, 0.001),
                )
            except httpx.TransportError as error:
                status, reason = None, f"{type(error).__name__}: {error}"
            else:
                if 200 <= response.status_code < 300:
                    return True
                status, reason = response.status_code, response.reason_phrase
                if status not in RETRYABLE:
                    logger.error(
                        "Failed to export %s to %s: %s %s", what, self.endpoint, status, reason
                    )
                    return False
                wait = _retry_after(response.headers.get("retry-after"), wait)
            if attempt + 1 == MAX_ATTEMPTS or wait > deadline - time.monotonic():
                break
            logger.warning(
                "Transient error exporting %s to %s (%s), retrying in %.2f s",
                what,
                self.endpoint,
                status or reason,
                wait,
            )
            if self._stopping.wait(wait):
                break
        logger.error(
            "Failed to export %s to %s: %s (gave up: timeout, retries or shutdown)",
            what,
            self.endpoint,
            status or reason,
        )
        return False

    def close(self) -> None:
        self._stopping.set()
        with self._client_lock:
            if self._client is not None:
                self._client.close()


class OtlpHttpSpanExporter(SpanExporter):
    sends_encoded_spans = True
    """It sends what `protobuf.encode_spans` writes: spans are encoded as they end."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> OtlpHttpSpanExporter:
        return cls(Sender.from_environment("TRACES", env))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.sender.stopped:
            return SpanExportResult.FAILURE
        try:
            body = encode_spans(spans)
        except Exception:
            logger.exception("telemetry: %d spans could not be encoded; dropped", len(spans))
            return SpanExportResult.FAILURE
        ok = self.sender.send(body, f"{len(spans)} spans")
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.sender.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # nothing is buffered here


class OtlpHttpMetricExporter(MetricExporter):
    def __init__(self, sender: Sender, temporality: str = "cumulative") -> None:
        super().__init__(preferred_temporality=dict(TEMPORALITIES[temporality]))
        self.sender = sender
        self.temporality = temporality

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> OtlpHttpMetricExporter:
        env = os.environ if env is None else env
        problems: list[ConfigProblem] = []
        variable = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
        temporality = env.get(variable, "").strip().lower() or "cumulative"
        if temporality not in TEMPORALITIES:
            problems.append(
                ConfigProblem(
                    variable,
                    f"unsupported temporality {temporality!r} "
                    f"(supported: {', '.join(TEMPORALITIES)})",
                )
            )
        try:
            sender = Sender.from_environment("METRICS", env)
        except ConfigError as error:
            problems[:0] = error.problems
        if problems:
            raise ConfigError(problems, "environment")
        return cls(sender, temporality)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self.sender.stopped:
            return MetricExportResult.FAILURE
        try:
            # Imported by the first export (a minute after start, on the reader's thread):
            # it brings in the generated protobuf modules, ~30 ms that start-up need not wait
            # for.
            from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

            body = encode_metrics(metrics_data).SerializeToString()
        except Exception:
            logger.exception("telemetry: metrics could not be encoded; dropped")
            return MetricExportResult.FAILURE
        ok = self.sender.send(body, "metrics")
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True  # nothing is buffered here

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.sender.close()


def _retry_after(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        return default  # an HTTP date: rare from collectors; the backoff will do
