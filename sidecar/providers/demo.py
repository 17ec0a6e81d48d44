"""Provider kind `demo`: an offline stand-in model, so the sidecar runs with no key and no network.

Its answer is deterministic and says plainly that it is a demo, and which tier and model
served the request; usage is counted from the prompt, so routing, cost and telemetry are
real on the first run (usage is the o200k_base estimate of the `tokens` classifier).
Streams are sent word by word like a real model's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..classifiers.tokens import REPLY_OVERHEAD, estimate_tokens, message_tokens
from ..hookspecs import hookimpl
from ..provider import Completion, ProviderKind, StreamChunk, UpstreamCall, Usage
from ..settings import ProviderSettings


class DemoProvider:
    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings

    def answer(self, call: UpstreamCall) -> tuple[str, Usage]:
        target = call.target
        tier = f"tier '{target.tier}'" if target.tier else "no tier"
        where = "on premises" if target.on_prem else "in the cloud"
        text = (
            f"This is a demo answer from the sidecar's built-in demo model "
            f"'{target.model_id}' ({tier}, provider '{target.provider}', priced as if {where}). "
            "No real language model was called. Put a real provider behind this tier in "
            "sidecar.yaml to get real answers."
        )
        messages = call.body.get("messages")
        prompt = 0
        if isinstance(messages, list) and messages:
            prompt = sum(message_tokens(m) for m in messages if isinstance(m, dict))
            prompt += REPLY_OVERHEAD
        return text, Usage(prompt, estimate_tokens(text))

    async def complete(self, call: UpstreamCall) -> Completion:
        text, usage = self.answer(call)
        payload = {
            "id": f"chatcmpl-demo-{call.request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.target.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(usage),
        }
        return Completion(payload, usage)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[StreamChunk]:
        text, usage = self.answer(call)
        base: dict[str, Any] = {
            "id": f"chatcmpl-demo-{call.request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.target.upstream_model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> StreamChunk:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return StreamChunk({**base, "choices": [choice]})

        yield chunk({"role": "assistant", "content": ""})
        words = text.split(" ")
        for index, word in enumerate(words):
            yield chunk({"content": word if index == 0 else " " + word})
        yield chunk({}, "stop")
        options = call.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            yield StreamChunk({**base, "choices": [], "usage": _usage(usage)}, usage)

    async def aclose(self) -> None:
        return None


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


@hookimpl(trylast=True)
def register_providers() -> ProviderKind:
    return ProviderKind("demo", DemoProvider)
