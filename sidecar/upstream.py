"""The one upstream HTTP client of the process: httpx's API over aiohttp's transport.

Measured on one core, a pass-through on httpx's own pool did ~780 requests/s and
degraded under concurrency; over aiohttp ~3,600. Timeouts are set per request by the
providers (httpx's 5 s default read timeout is far too short for a model).
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

from .errors import UpstreamUnavailable
from .settings import UpstreamSettings


def create_client(settings: UpstreamSettings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry,
    )
    # trust_env=False: a sidecar must not be re-routed by a stray HTTP_PROXY in the pod.
    return HttpxAiohttpClient(limits=limits, timeout=None, trust_env=False)


def transport_failure(
    provider: str, exc: BaseException, waiting_for: str, seconds: float
) -> UpstreamUnavailable:
    """Translate a transport-level failure, once, into the error the client sees.

    httpx-aiohttp maps every aiohttp connection error to `httpx.ConnectTimeout`, a refused
    connection included, so the aiohttp exception it chains is what tells them apart.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return UpstreamUnavailable(
            f"Upstream {provider!r} refused the connection or could not be resolved.",
            code="upstream_connection_error",
        )
    timed_out = isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError)
    if timed_out or (isinstance(exc, httpx.TimeoutException) and cause is None):
        return UpstreamUnavailable(
            f"Upstream {provider!r} did not send {waiting_for} within {seconds:g} s.",
            code="upstream_timeout",
            status_code=504,
        )
    return UpstreamUnavailable(
        f"Upstream {provider!r} broke the connection ({type(cause or exc).__name__}).",
        code="upstream_connection_error",
    )
