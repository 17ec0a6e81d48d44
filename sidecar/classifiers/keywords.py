"""Built-in classifier `keywords`: the operator's own word lists, as booleans.

    classifiers:
      keywords:
        legal: [contract, lawsuit, "non-disclosure agreement"]

gives `signals.keywords.legal`, true when any entry occurs in the prompt as a whole word
or phrase, ignoring case. The prompt is lower-cased once and each entry found with a
substring search in C; only a hit pays for the word-boundary check.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..classifier import Prompt
from ..hookspecs import hookimpl
from ..settings import Settings


class KeywordsClassifier:
    name = "keywords"

    def __init__(self, lists: Mapping[str, tuple[str, ...]]) -> None:
        self.lists = {name: tuple(word.lower() for word in words) for name, words in lists.items()}
        self.outputs = {name: "bool" for name in lists}

    def classify(self, prompt: Prompt) -> dict[str, bool]:
        text = prompt.text.lower()
        return {
            name: any(_occurs(word, text) for word in words) for name, words in self.lists.items()
        }


def _occurs(word: str, text: str) -> bool:
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = text.find(word, start + 1)
    return False


@hookimpl(trylast=True)
def register_classifiers(settings: Settings) -> KeywordsClassifier | None:
    lists = settings.classifiers.keywords
    return KeywordsClassifier(lists) if lists else None
