"""Which exporters the OTEL_* variables ask for, and the errors that name a wrong one."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from sidecar.errors import ConfigError
from sidecar.settings import parse_settings
from sidecar.telemetry import NO_TELEMETRY, from_environment
from sidecar.telemetry.export import exporters_from_environment
from sidecar.telemetry.otlp_grpc import GrpcSpanExporter
from sidecar.telemetry.otlp_http import OtlpHttpMetricExporter, OtlpHttpSpanExporter

from .support import DEMO_CONFIG


def test_nothing_configured_means_no_telemetry_at_all() -> None:
    assert exporters_from_environment({}) is None
    assert exporters_from_environment({"OTEL_SERVICE_NAME": "x"}) is None


def test_an_endpoint_turns_on_otlp_over_http_for_both_signals() -> None:
    exporters = exporters_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert exporters is not None
    assert [type(e) for e in exporters.spans] == [OtlpHttpSpanExporter]
    assert exporters.spans[0].sender.endpoint == "http://c:4318/v1/traces"
    assert [type(e) for e in exporters.metrics] == [OtlpHttpMetricExporter]
    assert exporters.metrics[0].sender.endpoint == "http://c:4318/v1/metrics"


def test_a_signal_endpoint_turns_on_only_that_signal() -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}
    exporters = exporters_from_environment(env)
    assert exporters is not None
    assert len(exporters.spans) == 1
    assert exporters.metrics == []


def test_exporters_named_explicitly_and_grpc() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "console,otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
    }
    exporters = exporters_from_environment(env)
    assert exporters is not None
    assert [type(e) for e in exporters.spans] == [ConsoleSpanExporter, GrpcSpanExporter]
    assert exporters.metrics == []


def test_sdk_disabled_wins() -> None:
    env = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert exporters_from_environment(env) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER: unsupported exporter 'zipkin' (supported: otlp, console, none)",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
            "OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' is not a positive number",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c",
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "lz4",
            },
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: unsupported compression 'lz4' "
            "(supported: gzip, deflate, none)",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT: 'c:4318/v1/traces' is not an http:// or https:// URL",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://c",
                "OTEL_EXPORTER_OTLP_CERTIFICATE": "/no/ca.pem",
            },
            "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot load:",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol 'http/json' "
            "(supported: http/protobuf, grpc)",
        ),
    ],
)
def test_a_wrong_variable_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        exporters_from_environment(env)
    assert message in str(caught.value)


def test_from_environment_is_free_without_exporters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    settings = parse_settings(DEMO_CONFIG, base_dir=tmp_path)
    assert from_environment(settings, router=None) is NO_TELEMETRY  # type: ignore[arg-type]
