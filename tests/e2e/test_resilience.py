"""Fallback, retries, timeouts, circuit breakers and the data boundary, against a fake upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sidecar import RequestFailed, Target, hookimpl

from ..fake_upstream import FakeUpstream, Reply, sse_reply
from ..support import ServerThread, assert_openai, fixture_bytes
from .conftest import running_sidecar, sdk

HELLO = [{"role": "user", "content": "hello"}]
STREAM = fixture_bytes("openai/chat_completion_stream.sse")
POLICIES = {
    "10-secure.yaml": (
        "when: '\"x-secure\" in request.headers'\n"
        "route: {tier: onprem}\nfallback: [mid]\nconfidential: true\n"
    ),
    "15-down.yaml": (
        "when: '\"x-down\" in request.headers'\nroute: {tier: down}\nfallback: [backup]\n"
    ),
    "20-explicit-model.yaml": 'when: request.model != "auto"\nroute: {requested: true}\n',
    "50-default.yaml": "when: request.tokens >= 0\nroute: {tier: mid}\nfallback: [backup]\n",
}


def config(upstream_url: str, **breaker: Any) -> dict[str, Any]:
    fast = {"connect": 1, "first_byte": 0.5, "idle": 0.5, "total": 1.5}
    base = f"{upstream_url}/v1"
    return {
        "providers": {
            "primary": {"kind": "openai", "base_url": base, "timeouts": fast},
            "backup": {"kind": "openai", "base_url": base, "timeouts": fast},
            "dead": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "timeouts": fast},
            "gpu": {"kind": "openai", "base_url": base, "timeouts": fast, "on_prem": True},
        },
        "models": {
            "a": {"provider": "primary", "name": "model-a"},
            "b": {"provider": "backup", "name": "model-b"},
            "d": {"provider": "dead", "name": "model-d"},
            "g": {"provider": "gpu", "name": "model-g"},
        },
        "tiers": {"mid": ["a"], "backup": ["b"], "down": ["d"], "onprem": ["g"]},
        "routing": {"default_tier": "mid", "max_retry_wait_seconds": 2},
        "breaker": breaker or {"failure_threshold": 1000, "window": 1000, "min_samples": 1000},
    }


def start(
    tmp_path: Path, upstream_url: str, plugins: tuple[tuple[str, object], ...] = (), **breaker: Any
) -> contextlib.AbstractContextManager[ServerThread]:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    for name, text in POLICIES.items():
        (policies / name).write_text(text)
    return running_sidecar(config(upstream_url, **breaker), tmp_path, plugins)


@pytest.fixture
def sidecar(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> Iterator[ServerThread]:
    with start(tmp_path, upstream_server[1].url) as server:
        yield server


def ask(sidecar: ServerThread, **kwargs: Any) -> Any:
    return sdk(sidecar).chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "auto"), messages=HELLO, **kwargs
    )


FAULTS = {
    "429 without Retry-After": Reply(429, fixture_bytes("openai/error_429.json")),
    "500": Reply(500, fixture_bytes("openai/error_500.json")),
    "502": Reply(502, b"<html>Bad Gateway</html>", content_type="text/html"),
    "503": Reply(503, b'{"error": {"message": "overloaded", "type": "server_error"}}'),
    "529": Reply(529, b'{"type": "error", "error": {"type": "overloaded_error"}}'),
    "timeout before headers": Reply(body=fixture_bytes("openai/chat_completion.json"), wait=2),
    "malformed JSON": Reply(200, b'{"id": "chatcmpl-1", "choices": ['),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_primary_falls_back(
    sidecar: ServerThread, upstream: FakeUpstream, fault: str
) -> None:
    upstream.queue_for("model-a", FAULTS[fault])
    raw = ask(sidecar)
    assert raw.parse().choices[0].message.content
    assert (raw.headers["x-sidecar-model"], raw.headers["x-sidecar-attempts"]) == ("b", "2")
    assert upstream.models_called() == ["model-a", "model-b"]


def test_connection_refused_falls_back(sidecar: ServerThread, upstream: FakeUpstream) -> None:
    raw = ask(sidecar, extra_headers={"x-down": "1"})  # tier `down` is a closed port
    assert (raw.headers["x-sidecar-model"], raw.headers["x-sidecar-attempts"]) == ("b", "2")
    assert upstream.models_called() == ["model-b"]


def test_retry_after_that_fits_is_waited_out_on_the_same_target(
    sidecar: ServerThread, upstream: FakeUpstream
) -> None:
    upstream.queue_for(
        "model-a", Reply(429, fixture_bytes("openai/error_429.json"), {"retry-after": "1"})
    )
    started = time.monotonic()
    raw = ask(sidecar)
    assert time.monotonic() - started >= 1
    assert (raw.headers["x-sidecar-model"], raw.headers["x-sidecar-attempts"]) == ("a", "2")
    assert upstream.models_called() == ["model-a", "model-a"]


def test_retry_after_too_long_moves_on(sidecar: ServerThread, upstream: FakeUpstream) -> None:
    upstream.queue_for(
        "model-a", Reply(429, fixture_bytes("openai/error_429.json"), {"retry-after": "60"})
    )
    raw = ask(sidecar)
    assert raw.headers["x-sidecar-model"] == "b"
    assert upstream.models_called() == ["model-a", "model-b"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_returned_without_fallback(
    sidecar: ServerThread, upstream: FakeUpstream, status: int
) -> None:
    upstream.queue_for("model-a", Reply(status, fixture_bytes("openai/error_400.json")))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(sidecar)
    assert caught.value.status_code == status
    assert upstream.models_called() == ["model-a"]


def test_every_target_failing_returns_the_last_error(
    sidecar: ServerThread, upstream: FakeUpstream
) -> None:
    upstream.queue_for("model-a", Reply(500, fixture_bytes("openai/error_500.json")))
    upstream.queue_for(
        "model-b", Reply(503, b'{"error": {"message": "down too", "type": "server_error"}}')
    )
    with pytest.raises(openai.InternalServerError, match="down too") as caught:
        ask(sidecar)
    assert caught.value.response.headers["x-sidecar-attempts"] == "2"


@pytest.mark.parametrize(
    "fault",
    [
        Reply(503, b'{"error": {"message": "busy"}}'),
        Reply(chunks=[b"data: {not json}\n\n"], content_type="text/event-stream"),
        Reply(chunks=[b"data: [DONE]\n\n"], wait=2, content_type="text/event-stream"),
        Reply(
            chunks=[STREAM.split(b"\n\n")[0] + b"\n\n"],
            reset_after=0,
            content_type="text/event-stream",
        ),
    ],
    ids=["503", "broken SSE line", "timeout before headers", "reset before the first event"],
)
def test_a_stream_falls_back_before_its_first_byte(
    sidecar: ServerThread, upstream: FakeUpstream, fault: Reply
) -> None:
    _falls_back(sidecar, upstream, fault)


@pytest.mark.parametrize(
    "fault",
    [
        Reply(200, fixture_bytes("openai/chat_completion.json")),  # JSON where SSE was asked
        Reply(chunks=[b": keep-alive\n\n"], content_type="text/event-stream"),
    ],
    ids=["not SSE", "no event at all"],
)
def test_a_stream_without_chunks_falls_back(
    sidecar: ServerThread, upstream: FakeUpstream, fault: Reply
) -> None:
    _falls_back(sidecar, upstream, fault)


def test_a_stream_cut_cleanly_before_it_finished_ends_with_an_error_event(
    sidecar: ServerThread, upstream: FakeUpstream
) -> None:
    events = STREAM.split(b"\n\n")
    upstream.queue_for("model-a", sse_reply(b"\n\n".join(events[:3]) + b"\n\n"))  # no finish
    with pytest.raises(openai.APIError, match="before the answer was complete"):
        list(sdk(sidecar).chat.completions.create(model="auto", messages=HELLO, stream=True))
    upstream.queue_for("model-a", sse_reply(b"\n\n".join(events[:5]) + b"\n\n"))  # finished
    chunks = list(sdk(sidecar).chat.completions.create(model="auto", messages=HELLO, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"


def _falls_back(sidecar: ServerThread, upstream: FakeUpstream, fault: Reply) -> None:
    upstream.queue_for("model-a", fault)
    raw = ask(sidecar, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Hello! How can I help?"
    assert raw.headers["x-sidecar-model"] == "b"
    assert upstream.models_called() == ["model-a", "model-b"]


@pytest.mark.parametrize(
    "fault",
    [
        sse_reply(STREAM.split(b"\n\n")[0] + b"\n\ndata: {broken\n\n"),
        Reply(
            chunks=[e + b"\n\n" for e in STREAM.split(b"\n\n")[:3]],
            reset_after=2,
            content_type="text/event-stream",
        ),
        sse_reply(STREAM, delay=2),
    ],
    ids=["broken SSE line", "reset mid-stream", "stall mid-stream"],
)
def test_a_stream_that_breaks_after_its_first_byte_ends_with_an_error_event(
    sidecar: ServerThread, upstream: FakeUpstream, fault: Reply
) -> None:
    upstream.queue_for("model-a", fault)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in sdk(sidecar).chat.completions.create(
            model="auto", messages=HELLO, stream=True
        ):
            received.append(chunk.choices[0].delta.content)
    assert received[0] == ""
    assert upstream.models_called() == ["model-a"]  # no fallback once bytes went out


def test_the_error_event_is_openai_shaped(sidecar: ServerThread, upstream: FakeUpstream) -> None:
    upstream.queue_for("model-a", sse_reply(STREAM.split(b"\n\n")[0] + b"\n\ndata: {broken\n\n"))
    body = {"model": "auto", "messages": HELLO, "stream": True}
    response = httpx.post(f"{sidecar.url}/v1/chat/completions", json=body)
    events = [e[6:] for e in response.content.split(b"\n\n") if e.startswith(b"data: ")]
    assert b"[DONE]" not in events
    assert_openai("ErrorResponse", json.loads(events[-1]))


def test_breaker_opens_half_opens_and_closes(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> None:
    with start(
        tmp_path, upstream_server[1].url, failure_threshold=2, cooldown_seconds=0.5
    ) as sidecar:
        for _ in range(2):
            upstream.queue_for("model-a", Reply(500, fixture_bytes("openai/error_500.json")))
            assert ask(sidecar).headers["x-sidecar-model"] == "b"
        health = httpx.get(f"{sidecar.url}/-/health").json()["models"]["a"]
        assert (health["state"], health["available"]) == ("open", False)
        upstream.calls.clear()
        assert ask(sidecar).headers["x-sidecar-model"] == "b"  # `a` is skipped while open
        assert upstream.models_called() == ["model-b"]

        time.sleep(0.6)
        assert httpx.get(f"{sidecar.url}/-/health").json()["models"]["a"]["available"]
        upstream.calls.clear()
        assert ask(sidecar).headers["x-sidecar-model"] == "a"  # the half-open probe succeeds
        assert httpx.get(f"{sidecar.url}/-/health").json()["models"]["a"]["state"] == "closed"


def test_policies_see_breaker_state(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> None:
    POLICIES["05-sick.yaml"] = 'when: "!models.a.available"\nroute: {tier: onprem}\n'
    try:
        with start(
            tmp_path, upstream_server[1].url, failure_threshold=1, cooldown_seconds=30
        ) as sidecar:
            upstream.queue_for("model-a", Reply(500, fixture_bytes("openai/error_500.json")))
            ask(sidecar)
            raw = ask(sidecar)
    finally:
        del POLICIES["05-sick.yaml"]
    assert (raw.headers["x-sidecar-policy"], raw.headers["x-sidecar-tier"]) == ("05-sick", "onprem")


def test_a_confidential_request_never_falls_back_to_the_cloud(
    sidecar: ServerThread, upstream: FakeUpstream
) -> None:
    upstream.queue_for("model-g", Reply(503, b'{"error": {"message": "gpu busy"}}'))
    with pytest.raises(openai.InternalServerError, match="gpu busy"):
        ask(sidecar, extra_headers={"x-secure": "1"})
    assert upstream.models_called() == ["model-g"]  # the policy's fallback tier `mid` is cloud


def test_a_confidential_request_with_no_on_prem_target_gets_a_503_and_nothing_is_sent(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> None:
    POLICIES["10-secure.yaml"] = (
        "when: '\"x-secure\" in request.headers'\nroute: {tier: mid}\nconfidential: true\n"
    )
    try:
        with (
            start(tmp_path, upstream_server[1].url) as sidecar,
            pytest.raises(openai.InternalServerError) as caught,
        ):
            ask(sidecar, extra_headers={"x-secure": "1"})
    finally:
        POLICIES["10-secure.yaml"] = (
            "when: '\"x-secure\" in request.headers'\n"
            "route: {tier: onprem}\nfallback: [mid]\nconfidential: true\n"
        )
    assert caught.value.status_code == 503
    assert caught.value.code == "no_on_prem_target"
    assert "10-secure is confidential" in caught.value.message
    assert upstream.calls == []


def test_sensitive_data_stays_home_even_when_a_policy_sends_it_to_the_cloud(
    sidecar: ServerThread, upstream: FakeUpstream
) -> None:
    messages = [{"role": "user", "content": "Email jane.doe@example.org the contract."}]
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(sidecar).chat.completions.create(model="mid", messages=messages)
    # The client named the cloud tier `mid`; the data is sensitive: nothing may be sent.
    assert caught.value.status_code == 503
    assert "sensitive data (email)" in caught.value.message
    assert upstream.calls == []


def test_hook_choose_fallback(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> None:
    seen: list[tuple[str, list[str], int]] = []

    class Chooser:
        @hookimpl
        def choose_fallback(
            self, failed: Target, error: RequestFailed, remaining: list[Target], attempt: int
        ) -> Target | str:
            seen.append((failed.model_id, [t.model_id for t in remaining], attempt))
            if error.status_code == 503:
                return "stop"
            # Suggest the on-prem model, outside the plan, for everything else.
            return Target("g", "gpu", "model-g", "onprem", True)

    with start(tmp_path, upstream_server[1].url, (("chooser", Chooser()),)) as sidecar:
        upstream.queue_for("model-a", Reply(500, fixture_bytes("openai/error_500.json")))
        raw = ask(sidecar)
        assert raw.headers["x-sidecar-model"] == "g"
        upstream.queue_for("model-a", Reply(503, b'{"error": {"message": "stop here"}}'))
        with pytest.raises(openai.InternalServerError, match="stop here"):
            ask(sidecar)
    assert seen == [("a", ["b"], 1), ("a", ["b"], 1)]
    assert upstream.models_called() == ["model-a", "model-g", "model-a"]


@pytest.mark.slow
def test_chaos_every_request_ends_well_formed(
    tmp_path: Path, upstream_server: tuple[FakeUpstream, ServerThread], upstream: FakeUpstream
) -> None:
    """2,000 requests, plain and streamed, with 30% of the primary's answers faulty."""
    chaos = random.Random(20261127)
    first_event = STREAM.split(b"\n\n")[0] + b"\n\n"
    faults = [
        lambda: Reply(500, fixture_bytes("openai/error_500.json")),
        lambda: Reply(429, fixture_bytes("openai/error_429.json")),
        lambda: Reply(503, b"overloaded", content_type="text/plain"),
        lambda: Reply(529, b'{"type": "error"}'),
        lambda: Reply(200, b'{"choices": [', content_type="application/json"),
        lambda: Reply(chunks=[first_event, b"data: {broken\n\n"], content_type="text/event-stream"),
        lambda: Reply(chunks=[first_event] * 3, reset_after=1, content_type="text/event-stream"),
        lambda: Reply(body=fixture_bytes("openai/chat_completion.json"), wait=2),
    ]

    def inject(body: dict[str, Any]) -> Reply | None:
        if body.get("model") != "model-a" or chaos.random() >= 0.3:
            return None
        return chaos.choice(faults)()

    upstream.chaos = inject
    outcomes: dict[str, int] = {}

    async def run(url: str) -> int:
        limit = asyncio.Semaphore(16)
        answered = 0

        async def one(index: int, client: httpx.AsyncClient) -> None:
            nonlocal answered
            stream = index % 2 == 1
            body = {"model": "auto", "messages": HELLO, "stream": stream}
            async with limit:
                response = await client.post("/v1/chat/completions", json=body)
            answered += 1
            outcome = _outcome(response, stream)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            await asyncio.gather(*(one(i, client) for i in range(2000)))
        return answered

    with start(tmp_path, upstream_server[1].url) as sidecar:
        answered = asyncio.run(asyncio.wait_for(run(sidecar.url), timeout=240))
    assert answered == 2000
    assert set(outcomes) <= {"ok", "stream ok", "stream error event"}, outcomes
    assert outcomes["ok"] + outcomes["stream ok"] > 1900  # the backup absorbs the faults


def _outcome(response: httpx.Response, stream: bool) -> str:
    if response.status_code != 200:
        assert_openai("ErrorResponse", response.json())
        return f"error {response.status_code}"
    if not stream:
        assert_openai("CreateChatCompletionResponse", response.json())
        return "ok"
    events = [e[6:] for e in response.content.split(b"\n\n") if e.startswith(b"data: ")]
    if events[-1] == b"[DONE]":
        return "stream ok"
    assert_openai("ErrorResponse", json.loads(events[-1]))
    return "stream error event"
