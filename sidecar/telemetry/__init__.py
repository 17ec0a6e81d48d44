"""Telemetry seam: what the request path calls, and the implementation chosen at start.

The request path only ever talks to `Telemetry` and the `RequestTrace` it starts. With no
exporter configured (no `OTEL_*` variable asks for one) that is `NO_TELEMETRY`, whose
methods do nothing and which never imports OpenTelemetry: telemetry off costs a few
no-op calls per request. `from_environment` builds the OpenTelemetry-backed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import RequestFailed
from ..provider import Target, Usage
from ..record import RequestRecord
from ..settings import Settings

if TYPE_CHECKING:
    from ..routing import Decision, PolicyRouter

NO_HEADERS: Mapping[str, str] = {}


class RequestTrace(Protocol):
    """The telemetry of one request: a server span, and a client span per attempt."""

    def attempt(
        self, target: Target, number: int, fallback_reason: str | None
    ) -> Mapping[str, str]:
        """An upstream attempt begins; returns the headers that carry its trace context."""
        ...

    def attempt_failed(self, error: RequestFailed) -> None: ...

    def attempt_succeeded(self, usage: Usage | None, response: Mapping[str, Any] | None) -> None:
        """A plain attempt answered; `response` is the `chat.completion`."""
        ...

    @property
    def captures_content(self) -> bool:
        """The operator opted in to prompt and answer text in telemetry."""
        ...

    def input_messages(self, messages: object) -> None:
        """The request's messages (only called when `captures_content`)."""
        ...

    def stream_chunk(self, chunk: Mapping[str, Any]) -> None:
        """A chunk of the streamed answer passed (only called when `captures_content`)."""
        ...

    def decided(self, decision: Decision) -> None:
        """The routing decision (only called when a classifier or a policy failed)."""
        ...

    def finish(self, record: RequestRecord) -> None:
        """The client has its answer: end the spans, record the metrics."""
        ...


class Telemetry(Protocol):
    def start_request(self, headers: Mapping[str, str]) -> RequestTrace:
        """A request arrived with these HTTP headers (a W3C `traceparent` is continued)."""
        ...

    async def shutdown(self) -> None:
        """Flush and stop, within `telemetry.export_timeout_seconds` whatever the collector does."""
        ...


class _NoTrace:
    captures_content = False

    def input_messages(self, messages: object) -> None:
        return None

    def attempt(
        self, target: Target, number: int, fallback_reason: str | None
    ) -> Mapping[str, str]:
        return NO_HEADERS

    def attempt_failed(self, error: RequestFailed) -> None:
        return None

    def attempt_succeeded(self, usage: Usage | None, response: Mapping[str, Any] | None) -> None:
        return None

    def stream_chunk(self, chunk: Mapping[str, Any]) -> None:
        return None

    def decided(self, decision: Decision) -> None:
        return None

    def finish(self, record: RequestRecord) -> None:
        return None


class _NoTelemetry:
    _trace = _NoTrace()

    def start_request(self, headers: Mapping[str, str]) -> RequestTrace:
        return self._trace

    async def shutdown(self) -> None:
        return None


NO_TELEMETRY: Telemetry = _NoTelemetry()
NO_TRACE: RequestTrace = _NoTrace()


def from_environment(settings: Settings, router: PolicyRouter) -> Telemetry:
    """Telemetry as the standard `OTEL_*` variables configure it; NO_TELEMETRY if they
    configure no exporter. Raises ConfigError naming the variable that is wrong."""
    from .export import exporters_from_environment

    exporters = exporters_from_environment()
    if exporters is None:
        return NO_TELEMETRY
    from .otel import OpenTelemetry

    return OpenTelemetry.exporting(settings, router, exporters)
