"""The OpenAI error body every failure becomes, and the translation of upstream errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar import errors
from sidecar.errors import (
    ConfigError,
    ConfigProblem,
    InvalidRequest,
    ModelNotFound,
    NoTargetAvailable,
    PayloadTooLarge,
    RequestFailed,
    UpstreamStatusError,
    UpstreamUnavailable,
    error_json,
    upstream_status_error,
)

FIXTURES = (Path(__file__).resolve().parents[1] / "../shared/spec/fixtures").resolve()

CASES: list[tuple[RequestFailed, int, dict[str, Any]]] = [
    (
        RequestFailed("boom"),
        500,
        {"message": "boom", "type": "server_error", "param": None, "code": None},
    ),
    (
        InvalidRequest("bad field", param="messages[0].role", code="invalid_value"),
        400,
        {
            "message": "bad field",
            "type": "invalid_request_error",
            "param": "messages[0].role",
            "code": "invalid_value",
        },
    ),
    (
        PayloadTooLarge("too big"),
        413,
        {
            "message": "too big",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        },
    ),
    (
        ModelNotFound("no such model", param="model"),
        404,
        {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        },
    ),
    (
        UpstreamStatusError(
            "slow down", status_code=429, error_type="requests", code="rate_limit_exceeded"
        ),
        429,
        {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"},
    ),
    (
        UpstreamUnavailable("connect failed"),
        502,
        {"message": "connect failed", "type": "upstream_error", "param": None, "code": None},
    ),
    (
        UpstreamUnavailable("timed out", status_code=504, code="upstream_timeout"),
        504,
        {
            "message": "timed out",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_timeout",
        },
    ),
    (
        NoTargetAvailable("all targets failed"),
        503,
        {
            "message": "all targets failed",
            "type": "service_unavailable",
            "param": None,
            "code": "no_target_available",
        },
    ),
]


@pytest.mark.parametrize(
    ("exc", "status", "expected"), CASES, ids=[f"{type(c[0]).__name__}-{c[1]}" for c in CASES]
)
def test_error_json(exc: RequestFailed, status: int, expected: dict[str, Any]) -> None:
    decoded = json.loads(error_json(exc))

    assert decoded == {"error": expected}
    assert list(decoded["error"]) == ["message", "type", "param", "code"]
    assert all(v is None or isinstance(v, str) for v in decoded["error"].values())
    assert exc.status_code == status
    assert exc.body() == decoded


def test_every_request_failed_class_is_covered() -> None:
    def subclasses(cls: type[RequestFailed]) -> set[type[RequestFailed]]:
        found = {cls}
        for sub in cls.__subclasses__():
            found |= subclasses(sub)
        return found

    defined_here = {c for c in subclasses(RequestFailed) if c.__module__ == errors.__name__}
    assert defined_here == {type(exc) for exc, _, _ in CASES}


def test_class_defaults_are_not_changed_by_an_instance() -> None:
    InvalidRequest("x", code="custom", status_code=422)
    assert (InvalidRequest.code, InvalidRequest.status_code) == (None, 400)
    assert ModelNotFound("x").code == "model_not_found"


def test_headers_are_copied() -> None:
    headers = {"Retry-After": "3"}
    exc = NoTargetAvailable("busy", headers=headers)
    headers["Retry-After"] = "99"
    assert exc.headers == {"Retry-After": "3"}
    assert RequestFailed("x").headers == {}


def _fixture_cases() -> list[Any]:
    cases = []
    for path in sorted((FIXTURES / "openai").glob("error_*.json")):
        status = int(path.stem.split("_")[1])
        error = json.loads(path.read_bytes())["error"]
        cases.append(pytest.param(path, status, error, id=f"openai-{path.stem}"))
    return cases


@pytest.mark.parametrize(("path", "status", "error"), _fixture_cases())
def test_upstream_openai_errors_are_kept(path: Path, status: int, error: dict[str, Any]) -> None:
    exc = upstream_status_error(status, path.read_bytes(), "openai")

    assert exc.status_code == status
    assert (exc.message, exc.error_type, exc.param, exc.code) == (
        error["message"],
        error["type"],
        error["param"],
        error["code"],
    )
    assert json.loads(error_json(exc)) == {"error": error}
    assert exc.headers == {"x-sidecar-upstream": "openai"}


def test_openai_error_fixtures_are_all_there() -> None:
    assert len(_fixture_cases()) == 5


@pytest.mark.parametrize(
    ("fixture", "status", "expected"),
    [
        (
            "vllm/error_400.json",
            400,
            {
                "message": "This model's maximum context length is 4096 tokens. "
                "However, you requested 5000 tokens.",
                "type": "BadRequestError",
                "param": None,
                "code": "400",
            },
        ),
        (
            "vllm/error_404.json",
            404,
            {
                "message": "The model `gpt-4o` does not exist.",
                "type": "NotFoundError",
                "param": "model",
                "code": "404",
            },
        ),
        (
            "gemini/error_429.json",
            429,
            None,  # checked loosely below: the fixture's own text
        ),
        (
            "gemini/error_400.json",
            400,
            {
                "message": "API key not valid. Please pass a valid API key.",
                "type": "INVALID_ARGUMENT",
                "param": None,
                "code": "400",
            },
        ),
        (
            "anthropic/error_429.json",
            429,
            {
                "message": "This request would exceed the rate limit for your organization "
                "of 50 input tokens per minute.",
                "type": "rate_limit_error",
                "param": None,
                "code": None,
            },
        ),
    ],
)
def test_upstream_non_openai_errors_get_string_codes(
    fixture: str, status: int, expected: dict[str, Any] | None
) -> None:
    raw = (FIXTURES / fixture).read_bytes()
    exc = upstream_status_error(status, raw, "local")
    decoded = json.loads(error_json(exc))["error"]

    assert exc.status_code == status
    assert all(v is None or isinstance(v, str) for v in decoded.values())
    if expected is None:
        source = json.loads(raw)["error"]
        expected = {
            "message": source["message"],
            "type": source["status"],
            "param": None,
            "code": str(source["code"]),
        }
    assert decoded == expected


@pytest.mark.parametrize(
    ("status", "body", "message", "error_type"),
    [
        pytest.param(
            404, b'{"detail":"Not Found"}', "Not Found", "invalid_request_error", id="detail"
        ),
        pytest.param(
            500, b'{"error":"engine crashed"}', "engine crashed", "upstream_error", id="error-str"
        ),
        pytest.param(502, b"Bad Gateway\n", "Bad Gateway", "upstream_error", id="plain-text"),
        pytest.param(
            400, b"<html>oops</html>", "<html>oops</html>", "invalid_request_error", id="html"
        ),
        pytest.param(503, b"", "upstream returned HTTP 503", "upstream_error", id="empty"),
        pytest.param(
            429, b"   \n", "upstream returned HTTP 429", "invalid_request_error", id="blank"
        ),
        pytest.param(500, b"null", "null", "upstream_error", id="json-null"),
        pytest.param(
            400,
            b'{"error":{"message":"","type":"x"}}',
            '{"error":{"message":"","type":"x"}}',
            "x",
            id="empty-message-falls-back-to-body",
        ),
    ],
)
def test_upstream_other_bodies(status: int, body: bytes, message: str, error_type: str) -> None:
    exc = upstream_status_error(status, body, "local")

    assert (exc.status_code, exc.message, exc.error_type) == (status, message, error_type)
    assert (exc.param, exc.code) == (None, None)
    assert json.loads(error_json(exc))["error"]["message"] == message


def test_upstream_plain_text_is_truncated() -> None:
    exc = upstream_status_error(500, b"x" * 1000, "local")
    assert exc.message == "x" * 200


def test_upstream_retry_after_is_kept() -> None:
    raw = (FIXTURES / "openai/error_429.json").read_bytes()
    exc = upstream_status_error(429, raw, "openai", headers={"Retry-After": "20"})
    assert exc.headers == {"x-sidecar-upstream": "openai", "Retry-After": "20"}


def test_config_error_lists_every_problem_with_its_path() -> None:
    problems = [
        ConfigProblem("tiers.mid[1]", "unknown model 'gpt-5x'"),
        ConfigProblem("server.port", "expected int, got string"),
        ConfigProblem("", "cannot read x.yaml: No such file or directory"),
    ]

    exc = ConfigError(problems, "conf/sidecar.yaml")

    assert exc.problems == problems
    assert exc.source == "conf/sidecar.yaml"
    assert str(exc) == (
        "conf/sidecar.yaml: 3 configuration error(s):\n"
        "  tiers.mid[1]: unknown model 'gpt-5x'\n"
        "  server.port: expected int, got string\n"
        "  cannot read x.yaml: No such file or directory"
    )


def test_config_error_without_source() -> None:
    exc = ConfigError([ConfigProblem("a.b", "bad")])
    assert str(exc) == "1 configuration error(s):\n  a.b: bad"


def test_a_numeric_status_is_not_taken_for_the_error_type() -> None:
    body = b'{"error": {"code": "429", "message": "slow down", "type": null, "status": 429}}'
    assert upstream_status_error(429, body, "azure").error_type == "invalid_request_error"
    google = b'{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}'
    assert upstream_status_error(503, google, "gemini").error_type == "UNAVAILABLE"
