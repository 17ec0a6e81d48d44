"""The record of one finished request, as observers and the ledger see it (no prompt text)."""

from __future__ import annotations

from dataclasses import dataclass

from .provider import Usage


@dataclass(frozen=True, slots=True)
class RequestRecord:
    request_id: str
    started_at: float
    """Unix time the request arrived."""
    duration_s: float
    status: int
    """The HTTP status the client got (200 for a stream that began, even if it broke later)."""
    stream: bool
    requested_model: str
    tier: str | None
    model_id: str | None
    provider: str | None
    policy: str | None
    usage: Usage | None
    error_type: str | None = None
    """The error's `type` when the request failed, else None."""
    attempts: int = 0
    """Upstream attempts made, retries and fallbacks included."""
    confidential: bool = False
    """The request was held to on-premises providers."""
    cost_usd: float | None = None
    """Priced from the usage the upstream reported; None when there was no usage."""
    baseline_cost_usd: float | None = None
    """The same usage priced at `cost.baseline_model`."""
    response_model: str | None = None
    """The model name the upstream answered with."""
    fallback_reason: str | None = None
    """The error code that made the first attempt fail over, if any attempt did."""

    @property
    def savings_usd(self) -> float | None:
        if self.cost_usd is None or self.baseline_cost_usd is None:
            return None
        return self.baseline_cost_usd - self.cost_usd
