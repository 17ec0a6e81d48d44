"""Which failures fall back, how long to wait, and the data boundary.

Also the default `choose_fallback` plugin: try the remaining targets in plan order.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence

from .errors import RequestFailed, UpstreamStatusError, UpstreamUnavailable
from .hookspecs import hookimpl
from .provider import Target

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
STOP = "stop"


def retryable(exc: RequestFailed) -> bool:
    """Connection failures, timeouts, 408, 429 and 5xx (529 included) are worth another
    target; other 4xx are the request's own fault and go back to the client as they are."""
    if isinstance(exc, UpstreamUnavailable):
        return True
    if isinstance(exc, UpstreamStatusError):
        return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
    return False


def retry_after(exc: RequestFailed, now: float | None = None) -> float | None:
    """Seconds the upstream asked to wait (`Retry-After`: seconds or an HTTP date)."""
    value = exc.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def within_boundary(target: Target, confidential: bool) -> bool:
    """A confidential request may only reach providers marked `on_prem`."""
    return target.on_prem or not confidential


@hookimpl(trylast=True)
def choose_fallback(remaining: Sequence[Target]) -> Target | str:
    return remaining[0] if remaining else STOP
