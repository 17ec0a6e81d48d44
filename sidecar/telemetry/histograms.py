"""Histograms aggregated in-process and added to every metric export.

The SDK's synchronous histogram costs ~11 µs a record without attributes and ~31-34 µs
with the eight a GenAI client metric carries (attribute hashing, a lock, an exemplar
filter and reservoir, each time; one core, Python 3.11, SDK 1.45); a request records
three. Here a record is one dict lookup and a few additions under a lock (~2 µs), and
the data points are built only when a reader collects, every export interval.

The SDK has no hook for metrics produced outside its instruments, so they join the export
at the exporter: `WithHistograms` wraps each metric exporter and adds the histograms to
the data the SDK's reader hands it, in the temporality that exporter asks for
(cumulative by default, delta when `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`
says so). Bucket semantics are OpenTelemetry's explicit buckets: bucket `i` counts the
values in `(bounds[i-1], bounds[i]]`.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

_Key = tuple[tuple[str, Any], ...]


class _Point:
    __slots__ = ("attributes", "buckets", "count", "max", "min", "sum")

    def __init__(self, attributes: Mapping[str, Any], buckets: int) -> None:
        self.attributes = dict(attributes)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.buckets = [0] * buckets


class ExplicitHistogram:
    """One histogram instrument: `record(value, attributes)` from the event loop; read by
    each exporter's view from the reader's thread."""

    def __init__(self, name: str, unit: str, description: str, bounds: Sequence[float]) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.bounds = tuple(float(b) for b in bounds)
        self._lock = threading.Lock()
        self._tables: list[dict[_Key, _Point]] = []
        self._started = time.time_ns()

    def record(self, value: float, attributes: Mapping[str, Any]) -> None:
        # Attribute dicts are built in a fixed order by the caller, so their items are a key.
        key = tuple(attributes.items())
        index = bisect_left(self.bounds, value)
        with self._lock:
            for table in self._tables:
                point = table.get(key)
                if point is None:
                    point = table[key] = _Point(attributes, len(self.bounds) + 1)
                point.count += 1
                point.sum += value
                if value < point.min:
                    point.min = value
                if value > point.max:
                    point.max = value
                point.buckets[index] += 1

    def view(self, delta: bool) -> HistogramView:
        """What one exporter reads; a histogram with no view records nothing."""
        with self._lock:
            self._tables.append({})
            return HistogramView(self, len(self._tables) - 1, delta)

    def _take(self, slot: int) -> dict[_Key, _Point]:
        """The points of a view's table, which starts again empty."""
        with self._lock:
            table, self._tables[slot] = self._tables[slot], {}
        return table

    def _copy(self, slot: int) -> dict[_Key, _Point]:
        with self._lock:  # copied whole: a record may be changing a point
            return {key: _copy(point) for key, point in self._tables[slot].items()}


class HistogramView:
    def __init__(self, histogram: ExplicitHistogram, slot: int, delta: bool):
        self._histogram = histogram
        self._slot = slot
        self._delta = delta
        self._since = histogram._started

    def collect(self) -> Metric | None:
        h = self._histogram
        now = time.time_ns()
        if self._delta:
            table = h._take(self._slot)
            since, self._since = self._since, now
            temporality = AggregationTemporality.DELTA
        else:
            table = h._copy(self._slot)
            since = self._since
            temporality = AggregationTemporality.CUMULATIVE
        if not table:
            return None
        points = [
            HistogramDataPoint(
                attributes=p.attributes,
                start_time_unix_nano=since,
                time_unix_nano=now,
                count=p.count,
                sum=p.sum,
                bucket_counts=tuple(p.buckets),
                explicit_bounds=h.bounds,
                min=p.min,
                max=p.max,
            )
            for p in table.values()
        ]
        return Metric(
            name=h.name,
            description=h.description,
            unit=h.unit,
            data=Histogram(data_points=points, aggregation_temporality=temporality),
        )


def _copy(point: _Point) -> _Point:
    copy = _Point(point.attributes, 0)
    copy.count, copy.sum, copy.min, copy.max = point.count, point.sum, point.min, point.max
    copy.buckets = list(point.buckets)
    return copy


class WithHistograms(MetricExporter):
    """A metric exporter that adds the histograms to what the SDK collected."""

    def __init__(
        self,
        exporter: MetricExporter,
        histograms: Sequence[ExplicitHistogram],
        scope: InstrumentationScope,
        resource: Resource,
    ) -> None:
        # The reader takes its temporality and aggregation preferences from its exporter;
        # they are the wrapped exporter's (the SDK keeps them in these attributes).
        temporality = getattr(exporter, "_preferred_temporality", None) or {}
        super().__init__(
            preferred_temporality=temporality,
            preferred_aggregation=getattr(exporter, "_preferred_aggregation", None) or {},
        )
        delta = temporality.get(HistogramInstrument) == AggregationTemporality.DELTA
        self.exporter = exporter
        self._views = [h.view(delta) for h in histograms]
        self._scope = scope
        self._resource = resource

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        extra = [m for m in (v.collect() for v in self._views) if m is not None]
        if extra:
            metrics_data = _merged(metrics_data, extra, self._scope, self._resource)
        return self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


def _merged(
    data: MetricsData, extra: list[Metric], scope: InstrumentationScope, resource: Resource
) -> MetricsData:
    resources = list(data.resource_metrics)
    if not resources:
        resources = [ResourceMetrics(resource=resource, scope_metrics=[], schema_url="")]
    first = resources[0]
    scopes = list(first.scope_metrics)
    for i, scope_metrics in enumerate(scopes):
        if scope_metrics.scope.name == scope.name:
            scopes[i] = ScopeMetrics(
                scope=scope_metrics.scope,
                metrics=[*scope_metrics.metrics, *extra],
                schema_url=scope_metrics.schema_url,
            )
            break
    else:
        scopes.append(ScopeMetrics(scope=scope, metrics=extra, schema_url=""))
    resources[0] = ResourceMetrics(
        resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url
    )
    return MetricsData(resource_metrics=resources)
