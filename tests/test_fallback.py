"""Which upstream failures fall back, and Retry-After."""

from __future__ import annotations

import httpx
import pytest

from sidecar.errors import (
    InvalidRequest,
    UpstreamStatusError,
    UpstreamUnavailable,
)
from sidecar.fallback import retry_after, retryable, within_boundary
from sidecar.provider import Target
from sidecar.upstream import _passed_on


def status_error(status: int, headers: dict[str, str] | None = None) -> UpstreamStatusError:
    return UpstreamStatusError("x", status_code=status, error_type="e", headers=headers)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int) -> None:
    assert retryable(status_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_go_back_as_they_are(status: int) -> None:
    assert not retryable(status_error(status))


def test_transport_failures_are_retryable_and_bad_requests_are_not() -> None:
    assert retryable(UpstreamUnavailable("refused"))
    assert not retryable(InvalidRequest("bad"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Fri, 27 Nov 2026 20:00:10 GMT", 10.0),
        ("Fri, 27 Nov 2026 19:59:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after(header: str, expected: float | None) -> None:
    now = 1795809600.0  # Fri, 27 Nov 2026 20:00:00 GMT
    headers = {"retry-after": header} if header else {}
    assert retry_after(status_error(429, headers), now=now) == expected


def test_the_data_boundary() -> None:
    cloud = Target("m", "cloud", "m", "mid", on_prem=False)
    home = Target("h", "gpu", "h", "onprem", on_prem=True)
    assert within_boundary(cloud, confidential=False)
    assert not within_boundary(cloud, confidential=True)
    assert within_boundary(home, confidential=True)


@pytest.mark.parametrize(
    ("headers", "passed_on"),
    [
        ({"retry-after": "3"}, {"retry-after": "3"}),
        ({"retry-after-ms": "1500"}, {"retry-after": "2"}),
        ({"x-ms-retry-after-ms": "200"}, {"retry-after": "1"}),
        ({"retry-after": "7", "retry-after-ms": "100"}, {"retry-after": "7"}),
        ({"retry-after-ms": "soon"}, {}),
        ({}, {}),
    ],
)
def test_a_wait_in_milliseconds_is_passed_on_as_retry_after(
    headers: dict[str, str], passed_on: dict[str, str]
) -> None:
    assert _passed_on(httpx.Response(429, headers=headers).headers) == passed_on
