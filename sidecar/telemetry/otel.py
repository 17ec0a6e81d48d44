"""Telemetry on OpenTelemetry: the spans and metrics of every request.

A server span per request (continuing an incoming W3C trace context), a client span
`chat {model}` per upstream attempt (whose context goes upstream in `traceparent`), and
metrics recorded when the request finishes. Nothing here blocks the request path: spans
are batched and exported by the SDK's span processors, metrics read periodically.

Spans are not made with the SDK's tracer. Its spans are built for code that sets
attributes one by one from anywhere: each value is checked and copied under a lock, and
starting one runs the span processors' `on_start`. A request's spans here are known whole
when they end, so they are built then, as the SDK's own finished span (`ReadableSpan`),
and handed to the same span processors and exporters. What stays the SDK's: the sampler
(`OTEL_TRACES_SAMPLER`, asked once per request; the attempt spans follow the request
span's decision, as the parent-based samplers would), the id generator, the resource, the
propagators (`OTEL_PROPAGATORS`), batching and export. Measured on one core: ~330 µs per
request of event-loop time with the tracer and the SDK's histograms, ~105 µs this way
(`bench/telemetry.py`), before encoding (`protobuf`: ~2.4 µs a span in C, ~40 µs in Python).
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
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeterProvider, Observation
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import Event, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision as Sampling
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .. import __version__
from ..errors import RequestFailed, error_kind
from ..provider import Target, Usage
from ..record import RequestRecord
from ..settings import Settings
from . import attributes as a
from .export import Exporters
from .histograms import ExplicitHistogram, WithHistograms
from .protobuf import PreEncodedSpan, encode_span

if TYPE_CHECKING:
    from ..routing import Decision, PolicyRouter

logger = logging.getLogger("sidecar")

DEFAULT_SERVICE_NAME = "llm-sidecar"
SCOPE = "sidecar"
UNSET = Status(StatusCode.UNSET)
ERROR = Status(StatusCode.ERROR)


class OpenTelemetry:
    def __init__(
        self,
        settings: Settings,
        router: PolicyRouter,
        *,
        span_processors: Sequence[SpanProcessor] = (),
        metric_exporters: Sequence[MetricExporter] = (),
        resource: Resource | None = None,
        sampler: Sampler | None = None,
        metric_export_interval_millis: float | None = None,
        pre_encode: bool = False,
    ) -> None:
        self.resource = resource if resource is not None else _resource()
        self.scope = InstrumentationScope(SCOPE, __version__)
        self._timeout = settings.telemetry.export_timeout_seconds
        timeout_ms = self._timeout * 1000
        self.capture_content = settings.telemetry.capture_content
        self.processors = tuple(span_processors)
        # Encode each span as it ends, for an exporter that reads the encoding (otlp_http).
        self.pre_encode = pre_encode
        # The sampler the SDK would use: OTEL_TRACES_SAMPLER and its argument, read by
        # TracerProvider (its only public way in); the provider itself is not used.
        self.sampler = sampler or TracerProvider(shutdown_on_exit=False).sampler
        self.ids = RandomIdGenerator()
        self._textmap: TextMapPropagator | None = None
        self._w3c_only = False
        self._router = router
        self.providers = {
            name: _provider_attributes(p.kind, p.base_url) for name, p in settings.providers.items()
        }
        self.token_usage = ExplicitHistogram(
            a.METRIC_TOKEN_USAGE,
            "{token}",
            "Tokens used by an upstream call, by token type (input, output).",
            a.TOKEN_BUCKETS,
        )
        self.duration = ExplicitHistogram(
            a.METRIC_OPERATION_DURATION,
            "s",
            "Duration of each upstream call (attempt), failed ones included.",
            a.DURATION_BUCKETS,
        )
        self._meter_provider: MeterProvider | None = None
        if metric_exporters:
            histograms = (self.token_usage, self.duration)
            readers = [
                PeriodicExportingMetricReader(
                    WithHistograms(exporter, histograms, self.scope, self.resource),
                    export_interval_millis=metric_export_interval_millis,
                    export_timeout_millis=timeout_ms,
                )
                for exporter in metric_exporters
            ]
            # shutdown_on_exit=False: the SDK's own atexit flush has no bound; ours has.
            self._meter_provider = MeterProvider(
                metric_readers=readers, resource=self.resource, shutdown_on_exit=False
            )
        self._instruments(
            (self._meter_provider or NoOpMeterProvider()).get_meter(SCOPE, __version__)
        )

    @classmethod
    def exporting(
        cls, settings: Settings, router: PolicyRouter, exporters: Exporters
    ) -> OpenTelemetry:
        timeout_ms = settings.telemetry.export_timeout_seconds * 1000
        return cls(
            settings,
            router,
            span_processors=[
                BatchSpanProcessor(exporter, export_timeout_millis=timeout_ms)
                for exporter in exporters.spans
            ],
            metric_exporters=exporters.metrics,
            pre_encode=any(getattr(e, "sends_encoded_spans", False) for e in exporters.spans),
        )

    def _instruments(self, meter: Meter) -> None:
        # Requests, cost, baseline cost and savings are summed here, per label set, and read
        # by the SDK at each export: a synchronous instrument costs ~22-30 us per add
        # (attribute hashing, locks), four per request; a dict update costs ~0.3 us.
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
        # Only attempts after a failed one count: rare enough for the SDK's counter.
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

    def w3c_only(self) -> bool:
        """The global propagators are the default W3C ones (trace context and baggage), so
        their headers may be read and written here without them. Checked again whenever
        the global propagator changes (a plugin may set its own)."""
        textmap = propagate.get_global_textmap()
        if textmap is not self._textmap:
            self._textmap = textmap
            self._w3c_only = _is_w3c_only(textmap)
        return self._w3c_only

    def emit(self, span: PreEncodedSpan) -> None:
        if self.pre_encode and span.context.trace_flags.sampled:
            span.otlp = encode_span(span)
        for processor in self.processors:
            processor.on_end(span)

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is pending now (spans, and a collection of the metrics)."""
        ok = all(p.force_flush(timeout_millis) for p in self.processors)
        if self._meter_provider is not None:
            ok = self._meter_provider.force_flush(timeout_millis) and ok
        return ok

    async def shutdown(self) -> None:
        """Flush and stop within the export timeout, even with a dead collector."""
        done = threading.Event()

        def stop() -> None:
            for stopper in (*(p.shutdown for p in self.processors), self._stop_metrics):
                try:
                    stopper()
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

    def _stop_metrics(self) -> None:
        if self._meter_provider is not None:
            self._meter_provider.shutdown()


_NO_CONTEXT = Context()
"""What the propagators extract from a request without trace context or baggage."""


def _is_w3c_only(textmap: TextMapPropagator) -> bool:
    if isinstance(textmap, TraceContextTextMapPropagator):
        return type(textmap) is TraceContextTextMapPropagator
    # The composite keeps its parts in a private attribute: if it moves, the propagators
    # do the work, as they would anyway.
    parts = getattr(textmap, "_propagators", None)
    if type(textmap) is not CompositePropagator or not isinstance(parts, list | tuple):
        return False
    kinds = [type(part) for part in parts]
    return TraceContextTextMapPropagator in kinds and all(
        kind in (TraceContextTextMapPropagator, W3CBaggagePropagator) for kind in kinds
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


class _Attempt:
    __slots__ = ("attributes", "began", "context", "metric_attributes", "name", "started")

    def __init__(
        self,
        name: str,
        context: SpanContext,
        attributes: dict[str, Any],
        metric_attributes: dict[str, Any],
    ) -> None:
        self.name = name
        self.context = context
        self.attributes = attributes
        self.metric_attributes = metric_attributes
        self.started = time.time_ns()
        self.began = time.perf_counter()


class _Trace:
    """One request's spans. Not thread-safe: a request lives on one event loop."""

    def __init__(self, telemetry: OpenTelemetry, headers: Mapping[str, str]) -> None:
        self._t = t = telemetry
        self._started = time.time_ns()
        # With the default propagators, a request that carries no trace context and no
        # baggage has nothing to extract, and its attempt's `traceparent` is formatted
        # here (~10 µs less than the propagators' own work, on every request).
        w3c = t.w3c_only() and "baggage" not in headers
        self._w3c_inject = w3c
        if w3c and "traceparent" not in headers:
            self._parent_context = parent_context = _NO_CONTEXT
            parent = trace.INVALID_SPAN_CONTEXT
        else:
            self._parent_context = parent_context = propagate.extract(headers)
            parent = trace.get_current_span(parent_context).get_span_context()
        self._parent = parent if parent.is_valid else None
        trace_id = parent.trace_id if parent.is_valid else t.ids.generate_trace_id()
        sampled = t.sampler.should_sample(parent_context, trace_id, a.SERVER_SPAN, SpanKind.SERVER)
        self._recording = sampled.decision is not Sampling.DROP
        self._flags = TraceFlags(
            TraceFlags.SAMPLED
            if sampled.decision is Sampling.RECORD_AND_SAMPLE
            else TraceFlags.DEFAULT
        )
        self._trace_state = sampled.trace_state
        self._context = SpanContext(
            trace_id, t.ids.generate_span_id(), False, self._flags, self._trace_state
        )
        self._attributes: dict[str, Any] = {
            a.HTTP_REQUEST_METHOD: "POST",
            a.HTTP_ROUTE: "/v1/chat/completions",
            a.GEN_AI_OPERATION_NAME: a.OPERATION_CHAT,
        }
        if sampled.attributes:  # what the sampler adds (none of the SDK's does)
            self._attributes.update(sampled.attributes)
        self._events: list[Event] = []
        self._attempt: _Attempt | None = None
        self._chunks: list[str] = []
        self.captures_content = t.capture_content
        self._response_model: str | None = None

    def input_messages(self, messages: object) -> None:
        self._attributes[a.GEN_AI_INPUT_MESSAGES] = _json(messages)

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
        context = SpanContext(
            self._context.trace_id,
            t.ids.generate_span_id(),
            False,
            self._flags,
            self._trace_state,
        )
        self._attempt = _Attempt(
            f"{a.OPERATION_CHAT} {target.upstream_model}",
            context,
            span_attributes,
            metric_attributes,
        )
        if self._w3c_inject:  # as TraceContextTextMapPropagator.inject writes them
            carrier = {
                "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-"
                f"{context.trace_flags:02x}"
            }
            if context.trace_state:
                carrier["tracestate"] = context.trace_state.to_header()
            return carrier
        carrier = {}
        propagate.inject(
            carrier,
            context=trace.set_span_in_context(NonRecordingSpan(context), self._parent_context),
        )
        return carrier

    def attempt_failed(self, error: RequestFailed) -> None:
        attempt = self._attempt
        if attempt is None:
            return
        kind = error_kind(error)
        attempt.attributes[a.ERROR_TYPE] = kind
        self._end_attempt(
            {**attempt.metric_attributes, a.ERROR_TYPE: kind},
            Status(StatusCode.ERROR, error.message),
        )

    def attempt_succeeded(self, usage: Usage | None, response: Mapping[str, Any] | None) -> None:
        attempt = self._attempt
        if attempt is None:
            return
        if response is not None:
            attributes = attempt.attributes
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
        self._end_ok(usage)

    def stream_chunk(self, chunk: Mapping[str, Any]) -> None:
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str):
                    self._chunks.append(content)

    def decided(self, decision: Decision) -> None:
        now = time.time_ns()
        for name in decision.failed_classifiers:
            self._events.append(
                Event(a.EVENT_CLASSIFIER_FAILED, {a.SIDECAR_CLASSIFIER: name}, timestamp=now)
            )
        for policy, error in decision.policy_errors:
            self._events.append(
                Event(
                    a.EVENT_POLICY_FAILED,
                    {a.SIDECAR_POLICY: policy, a.SIDECAR_ERROR: error},
                    timestamp=now,
                )
            )

    def finish(self, record: RequestRecord) -> None:
        t = self._t
        self._response_model = record.response_model or self._response_model
        attempt = self._attempt
        if attempt is not None:  # a stream: its attempt lasted until the end
            if record.error_type is not None and record.status < 400:
                attempt.attributes[a.ERROR_TYPE] = record.error_type
                self._end_attempt(
                    {**attempt.metric_attributes, a.ERROR_TYPE: record.error_type},
                    Status(StatusCode.ERROR, "the stream broke"),
                )
            else:
                if self._chunks:
                    attempt.attributes[a.GEN_AI_OUTPUT_MESSAGES] = _json(
                        [{"role": "assistant", "content": "".join(self._chunks)}]
                    )
                self._end_ok(record.usage)
        attributes = self._attributes
        attributes[a.HTTP_RESPONSE_STATUS_CODE] = record.status
        attributes[a.GEN_AI_REQUEST_MODEL] = record.requested_model
        attributes[a.GEN_AI_REQUEST_STREAM] = record.stream
        attributes[a.SIDECAR_REQUEST_ID] = record.request_id
        attributes[a.SIDECAR_ATTEMPT] = record.attempts
        attributes[a.SIDECAR_CONFIDENTIAL] = record.confidential
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
        if self._recording:
            t.emit(
                PreEncodedSpan(
                    name=a.SERVER_SPAN,
                    context=self._context,
                    parent=self._parent,
                    resource=t.resource,
                    attributes=attributes,
                    events=self._events,
                    kind=SpanKind.SERVER,
                    status=ERROR
                    if record.status >= 500 or record.error_type is not None
                    else UNSET,
                    start_time=self._started,
                    end_time=time.time_ns(),
                    instrumentation_scope=t.scope,
                )
            )
        t.totals.add(record)

    def _end_ok(self, usage: Usage | None) -> None:
        attempt = self._attempt
        if attempt is None:
            return
        metric_attributes = attempt.metric_attributes
        if self._response_model is not None:
            attempt.attributes[a.GEN_AI_RESPONSE_MODEL] = self._response_model
            metric_attributes = {
                **metric_attributes,
                a.GEN_AI_RESPONSE_MODEL: self._response_model,
            }
        if usage is not None:
            attempt.attributes.update(_usage_attributes(usage))
            record = self._t.token_usage.record
            record(usage.input_tokens, {**metric_attributes, a.GEN_AI_TOKEN_TYPE: "input"})
            record(usage.output_tokens, {**metric_attributes, a.GEN_AI_TOKEN_TYPE: "output"})
        self._end_attempt(metric_attributes, UNSET)

    def _end_attempt(self, metric_attributes: Mapping[str, Any], status: Status) -> None:
        attempt = self._attempt
        assert attempt is not None
        self._attempt = None
        self._t.duration.record(time.perf_counter() - attempt.began, metric_attributes)
        if self._recording:
            self._t.emit(
                PreEncodedSpan(
                    name=attempt.name,
                    context=attempt.context,
                    parent=self._context,
                    resource=self._t.resource,
                    attributes=attempt.attributes,
                    kind=SpanKind.CLIENT,
                    status=status,
                    start_time=attempt.started,
                    end_time=time.time_ns(),
                    instrumentation_scope=self._t.scope,
                )
            )


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
    return tuple(
        c["finish_reason"]
        for c in choices
        if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
    )


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
