"""What a classifier plugin implements: a prompt in, named signals out.

Classifiers turn a request into the `signals` that routing policies read
(`signals.<classifier name>.<output>`). They run on every request, so they must be cheap:
plain synchronous functions over text, measured in microseconds. A classifier declares
its outputs and their CEL types, so policies are checked against them when loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .wire.openai import prompt_text

# The CEL types an output may declare.
OUTPUT_TYPES = ("bool", "int", "double", "string", "list", "map")


@dataclass(frozen=True, slots=True)
class Prompt:
    """The parts of a chat request that classifiers look at."""

    text: str
    """Every message's text, joined by newlines: all that would be sent upstream."""
    last_user_text: str
    """The text of the last user message (the task being asked), or "" if none."""
    messages: Sequence[Mapping[str, Any]]
    _utf8: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def utf8(self) -> bytes:
        """`text` in UTF-8 (a lone surrogate, as JSON's "\\ud83d" decodes to, passed
        through), encoded on first use: several classifiers read the bytes, and a 20 KB
        prompt outside ASCII takes tens of microseconds to encode."""
        data = self._utf8
        if data is None:
            data = self.text.encode("utf-8", "surrogatepass")
            object.__setattr__(self, "_utf8", data)
        return data

    @classmethod
    def from_messages(cls, messages: Sequence[Mapping[str, Any]]) -> Prompt:
        last_user: list[Mapping[str, Any]] = []
        for message in reversed(messages):
            if message.get("role") == "user":
                last_user = [message]
                break
        return cls(prompt_text(messages), prompt_text(last_user), messages)


class Classifier(Protocol):
    name: str
    """The key under `signals` (e.g. `task` for `signals.task.kind`)."""
    outputs: Mapping[str, str]
    """Each output's name and CEL type (one of OUTPUT_TYPES); `classify` returns all of them."""

    def classify(self, prompt: Prompt) -> Mapping[str, Any]:
        """The signals for one prompt: plain Python values of the declared types."""
        ...
