"""What a policy sees of a request's headers."""

from __future__ import annotations

from sidecar.activation import routing_headers

HEADERS = {
    "Authorization": "Bearer sk-secret",
    "X-Api-Key": "k-1",
    "Cookie": "session=1",
    "X-Session-Id": "s-1",
    "X-Upstream-Token": "t-1",
    "X-Team": "research",
    "X-Sidecar-Key-Hint": "mid",
    "Content-Type": "application/json",
}


def test_credentials_never_reach_a_policy() -> None:
    assert routing_headers(HEADERS) == {
        "x-team": "research",
        "x-sidecar-key-hint": "mid",  # the sidecar's own headers are kept, whatever the name
        "content-type": "application/json",
    }


def test_each_name_is_judged_the_same_every_time() -> None:
    first = routing_headers(HEADERS)
    assert routing_headers(HEADERS) == first  # judged from what was remembered
    assert routing_headers({"x-password-reset": "1", "x-tenant": "a"}) == {"x-tenant": "a"}


def test_names_never_seen_before_are_judged_when_too_many_are_remembered() -> None:
    for i in range(2000):
        routing_headers({f"x-custom-{i}": "v"})
    assert routing_headers({"x-private-token-2": "t", "x-new-name": "v"}) == {"x-new-name": "v"}
