"""What a provider plugin implements, and the values that cross that seam.

A provider kind is registered through the `register_providers` hook as a `ProviderKind`;
the sidecar builds one `Provider` per `providers.<name>` entry of that kind. Providers
speak OpenAI chat completions to the core whatever they speak upstream: `complete`
returns a `chat.completion`, `stream` yields `chat.completion.chunk` payloads.
Failures are raised as `UpstreamStatusError` or `UpstreamUnavailable` (see errors.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .errors import ConfigProblem
from .settings import ProviderSettings


@dataclass(frozen=True, slots=True)
class Target:
    """One concrete place a request can be sent: a configured model on its provider."""

    model_id: str
    provider: str
    upstream_model: str
    tier: str | None
    on_prem: bool


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    """Every prompt token, cached and cache-written ones included (OpenAI's prompt_tokens)."""
    output_tokens: int = 0
    cached_input_tokens: int = 0
    """Prompt tokens read from a prompt cache."""
    cache_write_input_tokens: int = 0
    """Prompt tokens written to a prompt cache (Anthropic's cache creation)."""

    @classmethod
    def from_openai(cls, usage: object) -> Usage | None:
        """Read OpenAI's `usage` object; None when absent or not an object."""
        if not isinstance(usage, dict):
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return cls(
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            cached_input_tokens=_int(cached),
        )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One attempt: the OpenAI chat body to send (model already the upstream name).

    `headers` are HTTP headers the core asks the provider to send along, such as the W3C
    trace context of the attempt; an HTTP provider passes them to `Endpoint`."""

    body: Mapping[str, Any]
    target: Target
    request_id: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Completion:
    """A `chat.completion`. `raw` holds the bytes as received, forwarded when unchanged."""

    payload: dict[str, Any]
    usage: Usage | None
    raw: bytes | None = None


@dataclass(slots=True)
class StreamChunk:
    """A `chat.completion.chunk`. `raw` holds the JSON bytes as received, if any."""

    payload: dict[str, Any]
    usage: Usage | None = None
    raw: bytes | None = None


class Provider(Protocol):
    """A configured upstream. One instance per `providers.<name>`, shared by all requests."""

    settings: ProviderSettings

    async def complete(self, call: UpstreamCall) -> Completion:
        """Send a non-streamed request and return the whole answer."""
        ...

    def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        """An async generator of chunks. It raises before its first chunk if the upstream
        refuses the request, so the core can still answer with a proper error status."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds (the shared HTTP client is not its to close)."""
        ...


ProviderFactory = Callable[[ProviderSettings, httpx.AsyncClient], Provider]


@dataclass(frozen=True)
class ProviderKind:
    """A kind of provider (`openai`, `demo`, ...) as a plugin registers it.

    `options` names the extra keys this kind accepts in its `providers.<name>` section;
    any other unknown key is reported as a configuration error. `validate`, if given,
    checks a section further and returns its problems.
    """

    name: str
    factory: ProviderFactory
    options: frozenset[str] = frozenset()
    requires_base_url: bool = False
    validate: Callable[[ProviderSettings], list[ConfigProblem]] | None = field(default=None)
