"""Every span and metric name and attribute the sidecar emits, in one place.

The `gen_ai.*` names follow the OpenTelemetry GenAI semantic conventions; `sidecar.*` are
ours. Dashboards and alerts key on these strings: renaming one is a breaking change.
"""

from __future__ import annotations

from typing import Final

# Spans
SERVER_SPAN: Final = "POST /v1/chat/completions"
OPERATION_CHAT: Final = "chat"
"""`gen_ai.operation.name`; client spans are named `chat {model}`."""

# OpenTelemetry semantic conventions
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""Prompt text: only with `telemetry.capture_content: true`."""
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""Answer text: only with `telemetry.capture_content: true`."""
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# Ours
SIDECAR_REQUEST_ID: Final = "sidecar.request_id"
SIDECAR_TIER: Final = "sidecar.tier"
SIDECAR_POLICY: Final = "sidecar.policy"
SIDECAR_MODEL: Final = "sidecar.model"
"""The configured model id (`models.<id>`), as opposed to the upstream's model name."""
SIDECAR_PROVIDER: Final = "sidecar.provider"
"""The configured provider (`providers.<name>`)."""
SIDECAR_COST_USD: Final = "sidecar.cost.usd"
SIDECAR_BASELINE_COST_USD: Final = "sidecar.baseline_cost.usd"
SIDECAR_SAVINGS_USD: Final = "sidecar.savings.usd"
SIDECAR_ATTEMPT: Final = "sidecar.attempt"
"""On a client span: its number (1 = first); on the server span: attempts made."""
SIDECAR_FALLBACK_REASON: Final = "sidecar.fallback.reason"
SIDECAR_CONFIDENTIAL: Final = "sidecar.confidential"
SIDECAR_BREAKER_STATE: Final = "sidecar.breaker.state"
SIDECAR_OUTCOME: Final = "sidecar.outcome"
SIDECAR_CLASSIFIER: Final = "sidecar.classifier"
SIDECAR_ERROR: Final = "sidecar.error"

# Span events on the server span
EVENT_CLASSIFIER_FAILED: Final = "sidecar.classifier.failed"
"""A classifier raised or overran its budget: its signal is missing for this request."""
EVENT_POLICY_FAILED: Final = "sidecar.policy.failed"
"""A policy's `when` failed to evaluate (a confidential one then applies: fail closed)."""

# Metrics
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_REQUESTS: Final = "sidecar.requests"
METRIC_COST: Final = "sidecar.cost"
METRIC_BASELINE_COST: Final = "sidecar.baseline_cost"
METRIC_SAVINGS: Final = "sidecar.savings"
METRIC_FALLBACKS: Final = "sidecar.fallbacks"
METRIC_BREAKER_STATE: Final = "sidecar.breaker.state"
METRIC_POLICY_RELOADS: Final = "sidecar.policy.reloads"

# The semantic conventions' bucket advice for the two gen_ai histograms.
TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

# `gen_ai.provider.name` by provider kind: the conventions' well-known values.
PROVIDER_NAMES: Final = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure_openai": "azure.ai.openai",
}

BREAKER_STATES: Final = {"closed": 0, "half_open": 1, "open": 2}
