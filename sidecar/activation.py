"""What a routing policy sees: the CEL activation for one request.

Variables (the README's policy reference documents each, with its type):

- `request`: the request's routing-relevant fields, computed once per request;
- `signals`: one map per classifier, `signals.<classifier>.<output>`;
- `tiers` and `models`: what the configuration says about each tier and model. They are
  the same for every request, so they are built once per configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .classifier import Prompt
from .settings import Settings
from .wire.openai import ChatRequest

VARIABLES = {"request": "map", "signals": "map", "tiers": "map", "models": "map"}

# Fields of `request`, with their CEL types; the policy loader rejects any other field.
REQUEST_FIELDS = {
    "model": "string",
    "stream": "bool",
    "message_count": "int",
    "tokens": "int",
    "max_tokens": "int or null",
    "has_tools": "bool",
    "has_images": "bool",
    "user": "string",
    "text": "string",
    "headers": "map(string, string)",
}

# Request headers that carry credentials never reach a policy (nor anything it logs).
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "openai-api-key"}
)
_SECRET_HEADER_WORDS = ("token", "secret", "password", "key", "auth", "cookie", "session")


def request_map(
    request: ChatRequest, prompt: Prompt, tokens: int, headers: Mapping[str, str]
) -> dict[str, Any]:
    body = request.body
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    user = body.get("user")
    return {
        "model": request.model,
        "stream": request.stream,
        "message_count": len(request.messages),
        "tokens": tokens,
        "max_tokens": max_tokens if isinstance(max_tokens, int) else None,
        "has_tools": bool(body.get("tools") or body.get("functions")),
        "has_images": _has_images(request.messages),
        "user": user if isinstance(user, str) else "",
        "text": prompt.text,
        "headers": routing_headers(headers),
    }


def routing_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased headers minus anything that may carry a credential."""
    kept = {}
    for name, value in headers.items():
        name = name.lower()
        routable = _ROUTABLE.get(name)
        if routable is None:
            routable = _routable(name)
            if len(_ROUTABLE) < _ROUTABLE_NAMES:
                _ROUTABLE[name] = routable
        if routable:
            kept[name] = value
    return kept


def _routable(name: str) -> bool:
    if name in _SECRET_HEADERS:
        return False
    return name.startswith("x-sidecar-") or not any(w in name for w in _SECRET_HEADER_WORDS)


# Header names repeat from request to request: each is judged once (every request looked
# for seven words in each of its header names). Bounded: a client sending ever new names
# cannot grow it past this.
_ROUTABLE: dict[str, bool] = {}
_ROUTABLE_NAMES = 1024


def _has_images(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
                    return True
    return False


def config_maps(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `tiers` and `models` variables: built once per configuration."""
    models = {}
    for model_id, model in settings.models.items():
        provider = settings.providers[model.provider]
        models[model_id] = {
            "provider": model.provider,
            "name": model.name,
            "on_prem": provider.on_prem,
            "tiers": list(settings.tiers_of(model_id)),
            "price_input": model.price.input,
            "price_output": model.price.output,
            # Live health, refreshed from the circuit breakers on every request.
            "available": True,
            "breaker": "closed",
            "error_rate": 0.0,
            "latency_ms": 0.0,
        }
    tiers = {
        name: {
            "models": list(members),
            "on_prem": all(models[m]["on_prem"] for m in members),
            "available": True,
        }
        for name, members in settings.tiers.items()
    }
    return tiers, models


def sample_request() -> dict[str, Any]:
    """A typical request, for dry-running policies when they are loaded."""
    return {
        "model": "auto",
        "stream": False,
        "message_count": 1,
        "tokens": 12,
        "max_tokens": None,
        "has_tools": False,
        "has_images": False,
        "user": "",
        "text": "Summarize the following text in two sentences.",
        "headers": {"user-agent": "OpenAI/Python"},
    }


SAMPLE_VALUES: Mapping[str, Any] = {
    "bool": False,
    "int": 0,
    "double": 0.0,
    "string": "",
    "list": [],
    "map": {},
}
