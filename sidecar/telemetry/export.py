"""Exporters as the standard OpenTelemetry environment variables describe them.

Telemetry is on when a variable asks for it: `OTEL_EXPORTER_OTLP_ENDPOINT` (or a
per-signal `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`), or `OTEL_TRACES_EXPORTER` /
`OTEL_METRICS_EXPORTER` naming an exporter. Unlike the SDK's own default, an unset
exporter does not mean "send OTLP to localhost": a sidecar next to every application
must not spray connection errors where no collector runs. `OTEL_SDK_DISABLED=true` turns
everything off. Endpoint, headers, timeout and compression are read by the OTLP
exporters from the same variables (over http/protobuf the sidecar's own exporters,
`otlp_http`, which read them as the SDK's do; over grpc the SDK's, spans with the
sidecar's encoder: `otlp_grpc`); service name, resource attributes and sampler by the SDK.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ConfigProblem

SIGNALS = ("traces", "metrics")
EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_PROTOCOL = "http/protobuf"


@dataclass
class Exporters:
    spans: list[Any] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)


def exporters_from_environment(
    env: os._Environ[str] | dict[str, str] | None = None,
) -> Exporters | None:
    """The exporters the environment asks for, or None when it asks for none."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    problems: list[ConfigProblem] = []
    wanted = {signal: _exporter_names(signal, env, problems) for signal in SIGNALS}
    if problems:
        raise ConfigError(problems, "environment")
    if not any(wanted.values()):
        return None
    exporters = Exporters()
    for signal, names in wanted.items():
        for name in names:
            exporter = _build(signal, name, env, problems)
            if exporter is not None:
                (exporters.spans if signal == "traces" else exporters.metrics).append(exporter)
    if problems:  # a general variable wrong for both signals is one problem
        raise ConfigError(list(dict.fromkeys(problems)), "environment")
    return exporters


def _exporter_names(signal: str, env: Any, problems: list[ConfigProblem]) -> list[str]:
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    raw = env.get(variable, "").strip()
    if not raw:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in EXPORTERS:
            problems.append(
                ConfigProblem(
                    variable, f"unsupported exporter {name!r} (supported: {', '.join(EXPORTERS)})"
                )
            )
    return [name for name in names if name in EXPORTERS and name != "none"]


def _build(signal: str, name: str, env: Any, problems: list[ConfigProblem]) -> Any:
    if name == "console":
        if signal == "traces":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return ConsoleSpanExporter()
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
    protocol = env.get(variable, "").strip()
    if not protocol:
        variable = "OTEL_EXPORTER_OTLP_PROTOCOL"
        protocol = env.get(variable, "").strip() or DEFAULT_PROTOCOL
    if protocol not in PROTOCOLS:
        problems.append(
            ConfigProblem(
                variable, f"unsupported protocol {protocol!r} (supported: {', '.join(PROTOCOLS)})"
            )
        )
        return None
    if protocol == "grpc":
        try:
            if signal == "traces":
                from .otlp_grpc import grpc_span_exporter

                return grpc_span_exporter()
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetrics,
            )

            return GrpcMetrics()
        except ImportError:
            problems.append(
                ConfigProblem(
                    variable,
                    "grpc needs the gRPC exporter, which is not installed: "
                    "pip install 'llm-sidecar[grpc]' (or use http/protobuf)",
                )
            )
            return None
    if signal == "traces":
        from .otlp_http import OtlpHttpSpanExporter

        try:
            return OtlpHttpSpanExporter.from_environment(env)
        except ConfigError as error:
            problems.extend(error.problems)
            return None
    from .otlp_http import OtlpHttpMetricExporter

    try:
        return OtlpHttpMetricExporter.from_environment(env)
    except ConfigError as error:
        problems.extend(error.problems)
        return None


def describe(exporters: Exporters | None) -> str:
    """One line for `sidecar check`: where each signal goes."""
    if exporters is None:
        return "off (no OTEL_* variable configures an exporter)"
    parts = []
    for signal, found in (("spans", exporters.spans), ("metrics", exporters.metrics)):
        for exporter in found:
            sender = getattr(exporter, "sender", None)
            if sender is not None:
                where = f"OTLP http/protobuf to {sender.endpoint}"
            elif "grpc" in type(exporter).__module__:
                where = "OTLP grpc"
            else:
                where = "console"
            parts.append(f"{signal}: {where}")
    return "; ".join(parts)
