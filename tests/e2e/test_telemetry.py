"""Spans and metrics of real requests through a running sidecar, read from the SDK's
in-memory exporter and reader: a plain, a streamed, a fallen-back and a failed request."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sidecar import hookimpl
from sidecar.classifier import Prompt
from sidecar.runtime import Runtime
from sidecar.telemetry import attributes as a
from sidecar.telemetry.otel import OpenTelemetry

from ..fake_upstream import FakeUpstream, Reply, json_reply
from ..support import MemoryMetrics, ServerThread
from .conftest import running_sidecar, sdk, sidecar_config

SECRET_PROMPT = "the-launch-code-is-swordfish"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Collected:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = MemoryMetrics()
        self.telemetry: OpenTelemetry | None = None

    def install(self, capture_content: bool = False) -> Any:
        def configure(runtime: Runtime) -> None:
            self.telemetry = OpenTelemetry(
                runtime.settings,
                runtime.router,
                span_processors=[SimpleSpanProcessor(self.spans)],
                metric_exporters=[self.metrics],
                metric_export_interval_millis=math.inf,  # collected when a test asks
            )
            if capture_content:
                self.telemetry.capture_content = True
            runtime.telemetry = self.telemetry

        return configure

    def server_spans(self, count: int = 1, timeout: float = 5.0) -> list[ReadableSpan]:
        """The server spans, once `count` have ended (they end after the response)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = [s for s in self.spans.get_finished_spans() if s.kind == SpanKind.SERVER]
            if len(spans) >= count:
                return spans
            time.sleep(0.005)
        raise AssertionError(f"expected {count} server spans, got {len(spans)}")

    def client_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind == SpanKind.CLIENT]

    def points(self, name: str) -> list[Any]:
        assert self.telemetry is not None
        self.telemetry.flush()
        data = self.metrics.exported[-1]
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture(scope="module")
def collected() -> Collected:
    return Collected()


class Flaky:
    """A classifier that fails on prompts that ask it to."""

    name = "flaky"
    outputs: ClassVar[dict[str, str]] = {"ok": "bool"}

    def classify(self, prompt: Prompt) -> dict[str, Any]:
        if "explode" in prompt.text:
            raise RuntimeError("exploded")
        return {"ok": True}


class FlakyPlugin:
    @hookimpl
    def register_classifiers(self) -> Flaky:
        return Flaky()


@pytest.fixture(scope="module")
def server(
    upstream_server: tuple[FakeUpstream, ServerThread],
    collected: Collected,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    _, upstream = upstream_server
    with running_sidecar(
        sidecar_config(upstream.url),
        tmp_path_factory.mktemp("telemetry"),
        (("flaky", FlakyPlugin()),),
        configure=collected.install(),
    ) as s:
        yield s


@pytest.fixture
def telemetry(collected: Collected, server: ServerThread) -> Collected:
    collected.spans.clear()
    return collected


def _chat(server: ServerThread, model: str = "light", **kwargs: Any) -> Any:
    return sdk(server).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        extra_headers={"traceparent": TRACEPARENT},
        **kwargs,
    )


def _no_prompt_text(spans: list[ReadableSpan]) -> None:
    for span in spans:
        for value in (span.attributes or {}).values():
            assert SECRET_PROMPT not in str(value), span.name
        for event in span.events:
            assert SECRET_PROMPT not in json.dumps(dict(event.attributes or {}))


def test_a_plain_request_has_a_server_span_and_a_client_span_with_cost(
    server: ServerThread, upstream: FakeUpstream, telemetry: Collected
) -> None:
    _chat(server)
    (span,) = telemetry.server_spans()
    (attempt,) = telemetry.client_spans()
    # The incoming trace is continued, and the attempt's context went upstream.
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert attempt.parent is not None
    assert attempt.parent.span_id == span.context.span_id
    traceparent = upstream.calls[0].headers["traceparent"]
    assert traceparent == f"00-{TRACE_ID}-{attempt.context.span_id:016x}-01"

    assert span.name == a.SERVER_SPAN
    attrs = dict(span.attributes or {})
    assert attrs[a.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[a.GEN_AI_REQUEST_MODEL] == "light"
    assert attrs[a.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[a.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[a.GEN_AI_USAGE_INPUT_TOKENS] == 19
    assert attrs[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    assert attrs[a.SIDECAR_TIER] == "light"
    assert attrs[a.SIDECAR_POLICY] == "20-explicit-model"
    assert attrs[a.SIDECAR_MODEL] == "small"
    assert attrs[a.SIDECAR_ATTEMPT] == 1
    assert attrs[a.SIDECAR_CONFIDENTIAL] is False
    assert attrs[a.HTTP_RESPONSE_STATUS_CODE] == 200
    # small: 0.15/0.60 per million; the baseline (frontier's first model, big): 2.5/10.
    assert attrs[a.SIDECAR_COST_USD] == pytest.approx((19 * 0.15 + 10 * 0.6) / 1e6)
    assert attrs[a.SIDECAR_BASELINE_COST_USD] == pytest.approx((19 * 2.5 + 10 * 10) / 1e6)
    assert attrs[a.SIDECAR_SAVINGS_USD] == pytest.approx((19 * 2.35 + 10 * 9.4) / 1e6)
    assert a.ERROR_TYPE not in attrs
    assert a.SIDECAR_FALLBACK_REASON not in attrs
    assert span.status.status_code == StatusCode.UNSET

    assert attempt.name == "chat gpt-4o-mini"
    client = dict(attempt.attributes or {})
    assert client[a.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert client[a.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert client[a.GEN_AI_USAGE_INPUT_TOKENS] == 19
    assert client[a.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert client[a.SERVER_ADDRESS] == "127.0.0.1"
    assert client[a.SIDECAR_ATTEMPT] == 1
    _no_prompt_text(telemetry.spans.get_finished_spans())


def test_a_streamed_request_ends_its_client_span_with_the_stream(
    server: ServerThread, telemetry: Collected
) -> None:
    chunks = list(_chat(server, model="frontier", stream=True))
    assert chunks
    (span,) = telemetry.server_spans()
    (attempt,) = telemetry.client_spans()
    assert attempt.end_time is not None
    assert span.end_time is not None
    assert attempt.end_time <= span.end_time
    attrs = dict(span.attributes or {})
    assert attrs[a.GEN_AI_REQUEST_STREAM] is True
    assert attrs[a.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    # The usage came in the chunk the sidecar asked for and hid from this client.
    assert attrs[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[a.SIDECAR_COST_USD] == attrs[a.SIDECAR_BASELINE_COST_USD]
    assert attrs[a.SIDECAR_SAVINGS_USD] == 0
    assert dict(attempt.attributes or {})[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    _no_prompt_text(telemetry.spans.get_finished_spans())


def test_a_fallen_back_request_has_a_client_span_per_attempt(
    server: ServerThread, upstream: FakeUpstream, telemetry: Collected
) -> None:
    upstream.queue_for("gpt-4o", json_reply({"error": {"message": "down"}}, status=503))
    _chat(server, model="frontier")
    (span,) = telemetry.server_spans()
    first, second = sorted(telemetry.client_spans(), key=lambda s: s.start_time or 0)
    assert first.name == "chat gpt-4o"
    assert second.name == "chat gpt-4o-mini"
    assert dict(first.attributes or {})[a.ERROR_TYPE] == "503"
    assert first.status.status_code == StatusCode.ERROR
    assert dict(second.attributes or {})[a.SIDECAR_ATTEMPT] == 2
    assert dict(second.attributes or {})[a.SIDECAR_FALLBACK_REASON] == "503"
    assert second.status.status_code == StatusCode.UNSET
    attrs = dict(span.attributes or {})
    assert attrs[a.SIDECAR_ATTEMPT] == 2
    assert attrs[a.SIDECAR_FALLBACK_REASON] == "503"
    assert attrs[a.SIDECAR_MODEL] == "small"
    assert upstream.calls[0].headers["traceparent"] != upstream.calls[1].headers["traceparent"]
    (fallback,) = telemetry.points(a.METRIC_FALLBACKS)
    assert fallback.value == 1
    assert dict(fallback.attributes)[a.SIDECAR_FALLBACK_REASON] == "503"
    durations = telemetry.points(a.METRIC_OPERATION_DURATION)
    assert {dict(p.attributes).get(a.ERROR_TYPE) for p in durations} == {None, "503"}


def test_a_failed_request_records_its_error(
    server: ServerThread, upstream: FakeUpstream, telemetry: Collected
) -> None:
    upstream.queue(json_reply({"error": {"message": "bad", "type": "invalid_request_error"}}, 400))
    with pytest.raises(openai.BadRequestError):
        _chat(server)
    (span,) = telemetry.server_spans()
    (attempt,) = telemetry.client_spans()
    attrs = dict(span.attributes or {})
    assert attrs[a.HTTP_RESPONSE_STATUS_CODE] == 400
    assert attrs[a.ERROR_TYPE] == "invalid_request_error"
    assert a.SIDECAR_COST_USD not in attrs  # no usage: the cost is unknown, not zero
    assert dict(attempt.attributes or {})[a.ERROR_TYPE] == "400"
    assert attempt.status.status_code == StatusCode.ERROR


def test_a_stream_broken_midway_marks_its_attempt_failed(
    server: ServerThread, upstream: FakeUpstream, telemetry: Collected
) -> None:
    first = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n'
    )
    upstream.queue(Reply(chunks=[first, first], reset_after=1, content_type="text/event-stream"))
    with pytest.raises(openai.APIError):
        list(_chat(server, stream=True))
    (span,) = telemetry.server_spans()
    (attempt,) = telemetry.client_spans()
    assert attempt.status.status_code == StatusCode.ERROR
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})[a.HTTP_RESPONSE_STATUS_CODE] == 200


def _totals(telemetry: Collected, name: str) -> dict[frozenset[tuple[str, Any]], float]:
    """Each point's value (a histogram's sum) by its attributes: cumulative since start."""
    return {
        frozenset(dict(p.attributes).items()): getattr(p, "sum", getattr(p, "value", 0))
        for p in telemetry.points(name)
    }


def _delta(
    before: dict[frozenset[tuple[str, Any]], float],
    after: dict[frozenset[tuple[str, Any]], float],
    **labels: Any,
) -> float:
    """What the points matching `labels` grew by."""
    wanted = set(labels.items())
    return sum(v - before.get(k, 0) for k, v in after.items() if wanted <= set(k))


def test_metrics_by_tier_model_and_policy(server: ServerThread, telemetry: Collected) -> None:
    names = (a.METRIC_TOKEN_USAGE, a.METRIC_COST, a.METRIC_SAVINGS, a.METRIC_REQUESTS)
    before = {name: _totals(telemetry, name) for name in names}
    _chat(server)
    _chat(server)
    telemetry.server_spans(2)
    after = {name: _totals(telemetry, name) for name in names}

    def grew(name: str, **labels: Any) -> float:
        return _delta(before[name], after[name], **labels)

    tokens = a.METRIC_TOKEN_USAGE
    mini = {a.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", a.GEN_AI_PROVIDER_NAME: "openai"}
    assert grew(tokens, **mini, **{a.GEN_AI_TOKEN_TYPE: "input"}) == 38
    assert grew(tokens, **mini, **{a.GEN_AI_TOKEN_TYPE: "output"}) == 20
    labels = {
        a.SIDECAR_TIER: "light",
        a.SIDECAR_MODEL: "small",
        a.SIDECAR_POLICY: "20-explicit-model",
    }
    assert grew(a.METRIC_REQUESTS, **labels, **{a.HTTP_RESPONSE_STATUS_CODE: 200}) == 2
    assert grew(a.METRIC_COST, **labels) == pytest.approx(2 * (19 * 0.15 + 10 * 0.6) / 1e6)
    assert grew(a.METRIC_SAVINGS, **labels) == pytest.approx(2 * (19 * 2.35 + 10 * 9.4) / 1e6)
    states = {
        dict(p.attributes)[a.SIDECAR_MODEL]: p.value
        for p in telemetry.points(a.METRIC_BREAKER_STATE)
    }
    assert states == {"small": 0, "big": 0, "loose": 0, "onprem-demo": 0}
    reloads = {
        dict(p.attributes)[a.SIDECAR_OUTCOME] for p in telemetry.points(a.METRIC_POLICY_RELOADS)
    }
    assert reloads == {"applied", "rejected"}


def test_prompt_and_answer_text_only_when_the_operator_opts_in(
    upstream_server: tuple[FakeUpstream, ServerThread], tmp_path: Path
) -> None:
    _, upstream = upstream_server
    collected = Collected()
    config = sidecar_config(upstream.url, telemetry={"capture_content": True})
    with running_sidecar(config, tmp_path, configure=collected.install()) as server:
        _chat(server)
        list(_chat(server, stream=True))
        plain, streamed = sorted(collected.server_spans(2), key=lambda s: s.start_time or 0)
    assert SECRET_PROMPT in str(dict(plain.attributes or {})[a.GEN_AI_INPUT_MESSAGES])
    outputs = [
        dict(s.attributes or {}).get(a.GEN_AI_OUTPUT_MESSAGES) for s in collected.client_spans()
    ]
    assert all(outputs)
    assert len(outputs) == 2
    assert SECRET_PROMPT in str(dict(streamed.attributes or {})[a.GEN_AI_INPUT_MESSAGES])


def test_a_failed_classifier_leaves_a_span_event(
    server: ServerThread, telemetry: Collected
) -> None:
    sdk(server).chat.completions.create(
        model="light", messages=[{"role": "user", "content": "please explode"}]
    )
    (span,) = telemetry.server_spans()
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert events == [(a.EVENT_CLASSIFIER_FAILED, {a.SIDECAR_CLASSIFIER: "flaky"})]
