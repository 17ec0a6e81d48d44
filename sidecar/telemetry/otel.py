"""Telemetry on the OpenTelemetry SDK: the spans and metrics of every request.

A server span per request (continuing an incoming W3C trace context), a client span
`chat {model}` per upstream attempt (whose context goes upstream in `traceparent`), and
metrics recorded when the request finishes. Nothing here blocks the request path: spans
are batched and exported by the SDK's thread, metrics read periodically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeterProvider, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import __version__
from ..errors import RequestFailed, error_kind
from ..provider import Target, Usage
from ..record import RequestRecord
from ..settings import Settings
from . import attributes as a
from .export import Exporters

if TYPE_CHECKING:
    from ..routing import Decision, PolicyRouter

logger = logging.getLogger("sidecar")

DEFAULT_SERVICE_NAME = "llm-sidecar"
SCOPE = "sidecar"


class OpenTelemetry:
    def __init__(
        self,
        settings: Settings,
        router: PolicyRouter,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._timeout = settings.telemetry.export_timeout_seconds
        self.capture_content = settings.telemetry.capture_content
        self.tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(SCOPE, __version__)
        self._router = router
        self.providers = {
            name: _provider_attributes(p.kind, p.base_url) for name, p in settings.providers.items()
        }
        self._instruments((meter_provider or NoOpMeterProvider()).get_meter(SCOPE, __version__))

    @classmethod
    def exporting(
        cls, settings: Settings, router: PolicyRouter, exporters: Exporters
    ) -> OpenTelemetry:
        resource = _resource()
        timeout_ms = settings.telemetry.export_timeout_seconds * 1000
        tracer_provider = None
        if exporters.spans:
            # shutdown_on_exit=False: the SDK's own atexit flush has no bound; ours has.
            tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            for exporter in exporters.spans:
                tracer_provider.add_span_processor(
                    BatchSpanProcessor(exporter, export_timeout_millis=timeout_ms)
                )
        meter_provider = None
        if exporters.metrics:
            readers: list[MetricReader] = [
                PeriodicExportingMetricReader(exporter, export_timeout_millis=timeout_ms)
                for exporter in exporters.metrics
            ]
            meter_provider = MeterProvider(
                metric_readers=readers, resource=resource, shutdown_on_exit=False
            )
        return cls(settings, router, tracer_provider, meter_provider)

    def _instruments(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            a.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used by an upstream call, by token type (input, output).",
            explicit_bucket_boundaries_advisory=a.TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            a.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of each upstream call (attempt), failed ones included.",
            explicit_bucket_boundaries_advisory=a.DURATION_BUCKETS,
        )
        # Requests, cost, baseline cost and savings are summed here, per label set, and read
        # by the SDK at each export: a synchronous instrument costs ~22 us per add (attribute
        # hashing, locks), four per request; a dict update costs ~0.3 us.
        self.totals = _Totals()
        meter.create_observable_counter(
            a.METRIC_REQUESTS,
            callbacks=[self.totals.observe(0)],
            unit="{request}",
            description="Chat requests answered.",
        )
        meter.create_observable_counter(
            a.METRIC_COST,
            callbacks=[self.totals.observe(1)],
            unit="USD",
            description="What requests cost, from reported usage.",
        )
        meter.create_observable_counter(
            a.METRIC_BASELINE_COST,
            callbacks=[self.totals.observe(2)],
            unit="USD",
            description="What the same usage would have cost on the baseline model.",
        )
        # Up-down: a request routed to a model dearer than the baseline saves less than
        # nothing.
        meter.create_observable_up_down_counter(
            a.METRIC_SAVINGS,
            callbacks=[self.totals.observe(3)],
            unit="USD",
            description="Baseline cost minus cost.",
        )
        self.fallbacks = meter.create_counter(
            a.METRIC_FALLBACKS,
            unit="{attempt}",
            description="Attempts made after a failed one (retries and fallbacks), by reason.",
        )
        meter.create_observable_gauge(
            a.METRIC_BREAKER_STATE,
            callbacks=[self._breaker_states],
            description="Circuit breaker per model: 0 closed, 1 half-open, 2 open.",
        )
        meter.create_observable_counter(
            a.METRIC_POLICY_RELOADS,
            callbacks=[self._policy_reloads],
            unit="{reload}",
            description="Policy reloads since start, applied or rejected.",
        )

    def _breaker_states(self, options: CallbackOptions) -> list[Observation]:
        return [
            Observation(a.BREAKER_STATES.get(state["state"], -1), {a.SIDECAR_MODEL: model})
            for model, state in self._router.breakers.describe().items()
        ]

    def _policy_reloads(self, options: CallbackOptions) -> list[Observation]:
        store = self._router.store
        return [
            Observation(store.reloads, {a.SIDECAR_OUTCOME: "applied"}),
            Observation(store.failures, {a.SIDECAR_OUTCOME: "rejected"}),
        ]

    def start_request(self, headers: Mapping[str, str]) -> _Trace:
        return _Trace(self, headers)

    async def shutdown(self) -> None:
        """Flush and stop within the export timeout, even with a dead collector."""
        done = threading.Event()

        def stop() -> None:
            for provider in (self._tracer_provider, self._meter_provider):
                if provider is not None:
                    try:
                        provider.shutdown()
                    except Exception:
                        logger.exception("telemetry shutdown failed")
            done.set()

        # A daemon thread: if the collector hangs past the bound, exit does not wait for it.
        threading.Thread(target=stop, name="telemetry-shutdown", daemon=True).start()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, done.wait, self._timeout + 0.5):
            logger.warning(
                "telemetry not flushed within %.1f s (is the collector reachable?); "
                "dropping what is left",
                self._timeout,
            )


def _resource() -> Resource:
    resource = Resource.create({SERVICE_VERSION: __version__})
    name = resource.attributes.get(SERVICE_NAME)
    if not isinstance(name, str) or name.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _provider_attributes(kind: str, base_url: str | None) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {a.GEN_AI_PROVIDER_NAME: a.PROVIDER_NAMES.get(kind, kind)}
    if base_url:
        parts = urlsplit(base_url)
        if parts.hostname:
            attributes[a.SERVER_ADDRESS] = parts.hostname
            attributes[a.SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
    return attributes


class _Trace:
    """One request's spans. Not thread-safe: a request lives on one event loop."""

    def __init__(self, telemetry: OpenTelemetry, headers: Mapping[str, str]) -> None:
        self._t = telemetry
        self._parent = propagate.extract(headers)
        self._server = telemetry.tracer.start_span(
            a.SERVER_SPAN,
            context=self._parent,
            kind=SpanKind.SERVER,
            attributes={
                a.HTTP_REQUEST_METHOD: "POST",
                a.HTTP_ROUTE: "/v1/chat/completions",
                a.GEN_AI_OPERATION_NAME: a.OPERATION_CHAT,
            },
        )
        self._context: Context = trace.set_span_in_context(self._server, self._parent)
        self._attempt: Span | None = None
        self._attempt_began = 0.0
        self._attempt_attributes: dict[str, Any] = {}
        self._chunks: list[str] = []
        self.captures_content = telemetry.capture_content
        self._response_model: str | None = None

    def input_messages(self, messages: object) -> None:
        self._server.set_attribute(a.GEN_AI_INPUT_MESSAGES, _json(messages))

    def attempt(
        self, target: Target, number: int, fallback_reason: str | None
    ) -> Mapping[str, str]:
        t = self._t
        metric_attributes: dict[str, Any] = {
            a.GEN_AI_OPERATION_NAME: a.OPERATION_CHAT,
            **t.providers.get(target.provider, {}),
            a.GEN_AI_REQUEST_MODEL: target.upstream_model,
            a.SIDECAR_MODEL: target.model_id,
            a.SIDECAR_TIER: target.tier or "",
        }
        span_attributes = {
            **metric_attributes,
            a.SIDECAR_PROVIDER: target.provider,
            a.SIDECAR_ATTEMPT: number,
        }
        if fallback_reason is not None and number > 1:
            span_attributes[a.SIDECAR_FALLBACK_REASON] = fallback_reason
            t.fallbacks.add(
                1,
                {
                    a.SIDECAR_TIER: target.tier or "",
                    a.SIDECAR_MODEL: target.model_id,
                    a.SIDECAR_FALLBACK_REASON: fallback_reason,
                },
            )
        self._attempt = span = t.tracer.start_span(
            f"{a.OPERATION_CHAT} {target.upstream_model}",
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
        )
        self._attempt_began = time.perf_counter()
        self._attempt_attributes = metric_attributes
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span, self._context))
        return carrier

    def attempt_failed(self, error: RequestFailed) -> None:
        span = self._attempt
        if span is None:
            return
        kind = error_kind(error)
        span.set_attribute(a.ERROR_TYPE, kind)
        span.set_status(Status(StatusCode.ERROR, error.message))
        self._end_attempt({**self._attempt_attributes, a.ERROR_TYPE: kind})

    def attempt_succeeded(self, usage: Usage | None, response: Mapping[str, Any] | None) -> None:
        span = self._attempt
        if span is None:
            return
        attributes: dict[str, Any] = {}
        if response is not None:
            model = response.get("model")
            if isinstance(model, str):
                self._response_model = model
            if isinstance(response.get("id"), str):
                attributes[a.GEN_AI_RESPONSE_ID] = response["id"]
            reasons = _finish_reasons(response.get("choices"))
            if reasons:
                attributes[a.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
            if self._t.capture_content:
                attributes[a.GEN_AI_OUTPUT_MESSAGES] = _json(response.get("choices"))
        self._end_ok(usage, attributes)

    def stream_chunk(self, chunk: Mapping[str, Any]) -> None:
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str):
                    self._chunks.append(content)

    def decided(self, decision: Decision) -> None:
        for name in decision.failed_classifiers:
            self._server.add_event(a.EVENT_CLASSIFIER_FAILED, {a.SIDECAR_CLASSIFIER: name})
        for policy, error in decision.policy_errors:
            self._server.add_event(
                a.EVENT_POLICY_FAILED, {a.SIDECAR_POLICY: policy, a.SIDECAR_ERROR: error}
            )

    def finish(self, record: RequestRecord) -> None:
        t = self._t
        self._response_model = record.response_model or self._response_model
        if self._attempt is not None:  # a stream: its attempt lasted until the end
            if record.error_type is not None and record.status < 400:
                span = self._attempt
                span.set_attribute(a.ERROR_TYPE, record.error_type)
                span.set_status(Status(StatusCode.ERROR, "the stream broke"))
                self._end_attempt({**self._attempt_attributes, a.ERROR_TYPE: record.error_type})
            else:
                if self._chunks:
                    self._attempt.set_attribute(
                        a.GEN_AI_OUTPUT_MESSAGES,
                        _json([{"role": "assistant", "content": "".join(self._chunks)}]),
                    )
                self._end_ok(record.usage)
        server = self._server
        attributes: dict[str, Any] = {
            a.HTTP_RESPONSE_STATUS_CODE: record.status,
            a.GEN_AI_REQUEST_MODEL: record.requested_model,
            a.GEN_AI_REQUEST_STREAM: record.stream,
            a.SIDECAR_REQUEST_ID: record.request_id,
            a.SIDECAR_ATTEMPT: record.attempts,
            a.SIDECAR_CONFIDENTIAL: record.confidential,
        }
        for key, value in (
            (a.SIDECAR_TIER, record.tier),
            (a.SIDECAR_POLICY, record.policy),
            (a.SIDECAR_MODEL, record.model_id),
            (a.SIDECAR_PROVIDER, record.provider),
            (a.GEN_AI_RESPONSE_MODEL, self._response_model),
            (a.SIDECAR_FALLBACK_REASON, record.fallback_reason),
            (a.SIDECAR_COST_USD, record.cost_usd),
            (a.SIDECAR_BASELINE_COST_USD, record.baseline_cost_usd),
            (a.SIDECAR_SAVINGS_USD, record.savings_usd),
            (a.ERROR_TYPE, record.error_type),
        ):
            if value is not None:
                attributes[key] = value
        if record.provider is not None:
            attributes.update(t.providers.get(record.provider, {}))
        if record.usage is not None:
            attributes.update(_usage_attributes(record.usage))
        server.set_attributes(attributes)
        if record.status >= 500 or record.error_type is not None:
            server.set_status(Status(StatusCode.ERROR))
        server.end()
        t.totals.add(record)

    def _end_ok(self, usage: Usage | None, attributes: dict[str, Any] | None = None) -> None:
        span = self._attempt
        if span is None:
            return
        # One set_attributes call: each call takes the span's lock and checks every value.
        attributes = attributes if attributes is not None else {}
        metric_attributes = dict(self._attempt_attributes)
        if self._response_model is not None:
            attributes[a.GEN_AI_RESPONSE_MODEL] = self._response_model
            metric_attributes[a.GEN_AI_RESPONSE_MODEL] = self._response_model
        if usage is not None:
            attributes.update(_usage_attributes(usage))
        if attributes:
            span.set_attributes(attributes)
        if usage is not None:
            self._t.token_usage.record(
                usage.input_tokens, {**metric_attributes, a.GEN_AI_TOKEN_TYPE: "input"}
            )
            self._t.token_usage.record(
                usage.output_tokens, {**metric_attributes, a.GEN_AI_TOKEN_TYPE: "output"}
            )
        self._end_attempt(metric_attributes)

    def _end_attempt(self, metric_attributes: Mapping[str, Any]) -> None:
        assert self._attempt is not None
        self._t.duration.record(time.perf_counter() - self._attempt_began, metric_attributes)
        self._attempt.end()
        self._attempt = None


_Key = tuple[str, str, str, int]
"""(tier, model, policy, status)."""


class _Totals:
    """Cumulative requests, cost, baseline cost and savings per label set.

    Written on the event loop and read by the metric reader's thread: each update replaces
    a tuple under one dict key, which the reader sees whole or not at all."""

    def __init__(self) -> None:
        self._sums: dict[_Key, tuple[int, float, float, float]] = {}

    def add(self, record: RequestRecord) -> None:
        key = (record.tier or "", record.model_id or "", record.policy or "", record.status)
        requests, cost, baseline, savings = self._sums.get(key, (0, 0.0, 0.0, 0.0))
        saved = record.savings_usd
        self._sums[key] = (
            requests + 1,
            cost + (record.cost_usd or 0.0),
            baseline + (record.baseline_cost_usd or 0.0),
            savings + (saved or 0.0),
        )

    def observe(self, index: int) -> Callable[[CallbackOptions], list[Observation]]:
        def callback(options: CallbackOptions) -> list[Observation]:
            by_labels: dict[tuple[str, str, str], float] = {}
            observations = []
            for (tier, model, policy, status), sums in list(self._sums.items()):
                if index == 0:  # requests keep the status; money is summed over it
                    labels: dict[str, str | int] = {
                        a.SIDECAR_TIER: tier,
                        a.SIDECAR_MODEL: model,
                        a.SIDECAR_POLICY: policy,
                        a.HTTP_RESPONSE_STATUS_CODE: status,
                    }
                    observations.append(Observation(sums[0], labels))
                else:
                    key = (tier, model, policy)
                    by_labels[key] = by_labels.get(key, 0.0) + sums[index]
            for (tier, model, policy), value in by_labels.items():
                labels = {a.SIDECAR_TIER: tier, a.SIDECAR_MODEL: model, a.SIDECAR_POLICY: policy}
                observations.append(Observation(value, labels))
            return observations

        return callback


def _usage_attributes(usage: Usage) -> dict[str, int]:
    attributes = {
        a.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
        a.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
    }
    if usage.cached_input_tokens:
        attributes[a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_input_tokens
    if usage.cache_write_input_tokens:
        attributes[a.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_input_tokens
    return attributes


def _finish_reasons(choices: object) -> Sequence[str]:
    if not isinstance(choices, list):
        return ()
    return [
        c["finish_reason"]
        for c in choices
        if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
    ]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
