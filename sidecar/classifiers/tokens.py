"""Built-in classifier `tokens`: how many tokens the prompt is, estimated without a tokenizer.

Outputs (`signals.tokens.<name>`):

- `total` (int): the whole prompt in OpenAI's chat format: every message's content, its
  framing (`MESSAGE_OVERHEAD`, plus `NAME_OVERHEAD` and the name for a message with a
  `name`) and the priming of the reply (`REPLY_OVERHEAD`), as OpenAI's cookbook counts
  them. Images count `IMAGE_TOKENS` each (`IMAGE_TOKENS_LOW` with `"detail": "low"`).
  0 when there are no messages.
- `per_message` (list of int): each message's count, framing included, in order;
  `sum(per_message) + REPLY_OVERHEAD == total`.
- `max_message` (int): the largest of them (0 when there are none).

The count is an estimate of o200k_base, the vocabulary of GPT-4o, GPT-4.1, GPT-5 and the
o-series. An exact BPE count needs the vocabulary (tiktoken downloads it, which an
air-gapped pod cannot) and costs 40-180 µs on 2 KB even in Rust, over this classifier's
budget of ~15 µs on every request.

Method. Every character falls in a class: ASCII lower case, upper case, digit, space,
newline, tab or control, five groups of ASCII punctuation, and for other characters the
lead byte of their UTF-8 form, which names the script closely enough (Latin-1 symbols,
accented Latin, Greek, Cyrillic, Hebrew and Arabic, the Indic scripts and Thai, general
punctuation and symbols, kana, Han, Hangul, full-width forms, emoji). The estimate is

    tokens = sum(weight of each character) + START_TOKENS * starts

where `starts` approximates how many pieces o200k's pre-tokenizer cuts the text into: one
for each run of letters, one more where lower case resumes after upper case (a camelCase
hump, or the noise in a key such as `eyJrIjoi`), two for each run of digits and two for
each run of newlines. Both terms take a few passes in C over the UTF-8 bytes:
`bytes.translate` maps each character to its weight (in 1/32 token) and to its flag bits,
`zlib.adler32` sums the weights (its first half is the byte sum modulo 65521, exact for
chunks of 1 KB), and one shift, one exclusive or, one mask and `int.bit_count` count the
flags that switch on from one character to the next. No regular expression and no Python
loop runs per character, so it costs ~7 µs a KB (~14 µs on 2 KB, ~130 µs on 20 KB; 26 and
138 µs in `bench/classifiers.py`, which runs it after the other classifiers), plus ~3 µs
for each message (2 KB in 20 messages: ~70 µs). The UTF-8 of a prompt's only message is
the prompt's own (`Prompt.utf8`), encoded once for all classifiers. The weights are
non-negative, so appending or prepending text never lowers the estimate.

Calibration. The weights are a non-negative least-absolute-relative-error fit against the
exact o200k_base count (OpenAI's tiktoken over the vocabulary whose SHA-256 tiktoken pins)
of the 775 prompts of the evaluation set dev.jsonl (English prose, code, math, Russian,
Chinese, Japanese ...) and of half of a multilingual set (Debian's fortunes and manual
pages, message catalogues in 36 languages, common words in 20, text with common emoji);
rare classes are pulled towards a prior of about one token a character.

Measured error, |estimate - exact| / exact, on dev.jsonl:

    kind (prompts)           median   p90    p99    max   median signed  sum
    all (775)                 4.0%    11.1%  27.6%  57.1%   +0.0%        -0.4%
    English prose (576)       3.8%     9.4%  17.5%  57.1%   +0.0%        -0.8%
    code (132)                5.2%    15.6%  31.1%  35.3%   +0.0%        +1.6%
    non-Latin scripts (42)    6.4%    20.1%  39.2%  46.7%   +0.0%        -1.4%
    other Latin (25)          5.2%    10.5%  16.8%  17.6%   -4.2%        -3.7%

(5-fold cross-validation of the whole fit: median 4.1%, p90 11.2%, p99 26.8%.) The largest
relative errors are short prompts, where one token is 5-10%, and high-entropy strings (API
keys, base64), which o200k cuts into pieces of 2-3 characters: those come out 20-50% low.
On the multilingual half held out of the fit (621 texts) the median error is 9%: Chinese,
Japanese, Korean, Russian, German, Spanish, Greek, Hebrew, Georgian, Thai and most Indic
scripts are within about 10%, emoji text within 4%, but languages that o200k cuts into more
pieces than their letters suggest come out low (Polish, Finnish, Italian, Hungarian, Czech,
Ukrainian, Bulgarian by 20-35%; French and Dutch by ~17%), and Persian and Vietnamese high
(by ~20%). For the exact count of a given model, ask its provider: the estimate is for
routing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zlib import adler32

from .. import native
from ..classifier import Prompt
from ..hookspecs import hookimpl

MESSAGE_OVERHEAD = 4
"""Tokens that frame each message: `<|im_start|>`, the role, a separator, `<|im_end|>`."""
NAME_OVERHEAD = 1
"""Tokens added by a message's `name` field, besides the name itself."""
REPLY_OVERHEAD = 3
"""Tokens that prime the reply (`<|im_start|>assistant<|im_sep|>`), once per prompt."""
IMAGE_TOKENS = 765
"""An image part at the default detail: GPT-4o's count for a 1024x1024 image (a base of 85
plus 170 for each of four 512-pixel tiles). The real count depends on the image's size,
which is not read: a 512x512 image is 255, a 2048x1024 one 1105."""
IMAGE_TOKENS_LOW = 85
"""An image part with `"detail": "low"`: a fixed 85 whatever its size."""

START_TOKENS = 0.365
"""Tokens for each flag that switches on (see `_FLAGS`)."""
_UNIT = 1 / 32
"""The unit of `_WEIGHTS`."""
_CHUNK = 1024
"""Bytes summed by one `adler32` call: 1024 * 63 < 65521, so the sum is exact."""

# Weight of a character in 1/32 token (at most 63), by class.
_ASCII_WEIGHTS = {
    "abcdefghijklmnopqrstuvwxyz": 1,
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ": 10,
    "0123456789": 13,
    " ": 5,
    "\n\r": 15,
    ".,;:!?": 24,
    "'\"`": 13,
    "()[]{}<>": 11,
    "-_/\\|": 15,
    "#$%&*+=@^~": 30,
}
_CONTROL_WEIGHT = 16
"""Tab and the other control characters."""
# Weight of a non-ASCII character by the lead byte of its UTF-8 form, with whether it is a
# letter (a letter continues a word; symbols and punctuation do not).
_LEAD_WEIGHTS = (
    (0xC2, 0xC2, 32, False),  # U+0080-00BF: Latin-1 symbols, no-break space, « »
    (0xC3, 0xC3, 28, True),  # U+00C0-00FF: Latin-1 letters (é, ü, ñ, ß)
    (0xC4, 0xC9, 32, True),  # U+0100-027F: Latin Extended-A and -B (ł, ő, ș)
    (0xCA, 0xCB, 32, True),  # U+0280-02FF: IPA, modifier letters
    (0xCC, 0xCD, 16, True),  # U+0300-036F: combining diacritics
    (0xCE, 0xCF, 9, True),  # U+0380-03FF: Greek
    (0xD0, 0xD3, 5, True),  # U+0400-04FF: Cyrillic
    (0xD4, 0xD7, 11, True),  # U+0500-05FF: Cyrillic Supplement, Armenian, Hebrew
    (0xD8, 0xDB, 9, True),  # U+0600-06FF: Arabic
    (0xDC, 0xDF, 16, True),  # U+0700-07FF: Syriac, Thaana, N'Ko
    (0xE0, 0xE0, 14, True),  # U+0800-0FFF: Devanagari, Bengali, Tamil ..., Thai, Tibetan
    (0xE1, 0xE1, 13, True),  # U+1000-1FFF: Myanmar, Georgian, Vietnamese letters, Greek ext.
    (0xE2, 0xE2, 32, False),  # U+2000-2FFF: punctuation (— “ ” …), arrows, math, ✓
    (0xE3, 0xE3, 22, True),  # U+3000-3FFF: CJK punctuation, hiragana, katakana
    (0xE4, 0xE9, 19, True),  # U+4000-9FFF: Han
    (0xEA, 0xED, 15, True),  # U+A000-DFFF: Hangul (and lone surrogates)
    (0xEE, 0xEF, 32, False),  # U+E000-FFFF: private use, full-width forms (U+FF0C comma)
    (0xF0, 0xF4, 34, False),  # U+10000-: emoji, math alphanumerics, rare Han
)

# Flag bits of a character. A flag that is on for a character but off for the one before
# counts one start: a letter after a non-letter starts a word (_WORD), a lower-case or
# caseless letter after anything else starts a lower-case run (_LOWER: "hello" and
# "Hello" count 2, "HELLO" 1, "camelCase" 3), digits and newlines weigh two bits each.
_WORD = 0b000001
_LOWER = 0b000010
_DIGITS = 0b001100
_NEWLINES = 0b110000
_ASTRAL = 0b11000000
"""Characters past U+FFFF (mostly emoji, often 2 tokens each): two bits for each run."""


def _tables() -> tuple[bytes, bytes]:
    weights = bytearray(256)
    flags = bytearray(256)
    for byte in range(128):
        weights[byte] = _CONTROL_WEIGHT
    for chars, weight in _ASCII_WEIGHTS.items():
        for char in chars:
            weights[ord(char)] = weight
    for char in "abcdefghijklmnopqrstuvwxyz":
        flags[ord(char)] = _WORD | _LOWER
    for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        flags[ord(char)] = _WORD
    for char in "0123456789":
        flags[ord(char)] = _DIGITS
    flags[ord("\n")] = flags[ord("\r")] = _NEWLINES
    for first, last, weight, letter in _LEAD_WEIGHTS:
        for byte in range(first, last + 1):
            weights[byte] = weight
            flags[byte] = _WORD | _LOWER if letter else 0
    for byte in range(0xF0, 0xF5):
        flags[byte] = _ASTRAL
    return bytes(weights), bytes(flags)


_WEIGHTS, _FLAGS = _tables()
_CONTINUATION = bytes(range(0x80, 0xC0))
"""UTF-8 continuation bytes, deleted so that each character leaves one byte."""


def estimate_tokens(text: str, *, utf8: bytes | None = None) -> int:
    """An estimate of the o200k_base token count of `text` (0 for "", else at least 1).
    `utf8`, when given, is `text` in UTF-8 (lone surrogates passed through), so that a
    caller that already has it does not pay for encoding it again."""
    if not text:
        return 0
    data = utf8 if utf8 is not None else text.encode("utf-8", "surrogatepass")
    units, starts = _counts(data, _WEIGHTS, _FLAGS)
    return int(units * _UNIT + starts * START_TOKENS + 0.5) or 1


def _python_counts(data: bytes, weights: bytes, flags: bytes) -> tuple[int, int]:
    """The sum of the characters' weights, and the flags that switch on, of UTF-8 `data`
    (the C extension `_tokens` does the same in one loop)."""
    # One byte per character: continuation bytes are deleted (ASCII has none to delete).
    skip = b"" if data.isascii() else _CONTINUATION
    weighted = data.translate(weights, skip)
    units = (adler32(weighted[:_CHUNK]) & 0xFFFF) - 1
    if len(weighted) > _CHUNK:
        for start in range(_CHUNK, len(weighted), _CHUNK):
            units += (adler32(weighted[start : start + _CHUNK]) & 0xFFFF) - 1
    bits = int.from_bytes(data.translate(flags, skip), "little")
    # The bits on for a character and off for the one before (`bits & ~(bits << 8)`,
    # without the negative number that `~` makes and `&` then converts back).
    return units, ((bits ^ (bits << 8)) & bits).bit_count()


_counts: Callable[[bytes, bytes, bytes], tuple[int, int]] = _python_counts
try:
    native.allow()
    from ._tokens import counts as _native_counts
except ImportError:  # not built (no C compiler) or SIDECAR_PURE_PYTHON: ~5 µs a KB slower
    pass
else:
    _counts = _native_counts


def message_tokens(message: Mapping[str, Any]) -> int:
    """One message's tokens: its content, name and tool calls, and `MESSAGE_OVERHEAD`.

    Content is a string or a list of parts; a part's `text` (or `refusal`) counts, an
    `image_url` part counts `IMAGE_TOKENS` (`IMAGE_TOKENS_LOW` at low detail), and other
    parts (audio, files) count nothing. A `name` counts with `NAME_OVERHEAD`. Tool calls
    count their function's name and arguments. Anything of another shape counts nothing."""
    return _message_tokens(message, None)


def _message_tokens(message: Mapping[str, Any], prompt: Prompt | None) -> int:
    content = message.get("content")
    if type(content) is str:
        # The content of a prompt's only message is its text, whose UTF-8 it may hold.
        utf8 = prompt.utf8 if prompt is not None and content is prompt.text else None
        tokens = MESSAGE_OVERHEAD + estimate_tokens(content, utf8=utf8)
    else:
        tokens = MESSAGE_OVERHEAD
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    tokens += _part_tokens(part)
    name = message.get("name")
    if isinstance(name, str) and name:
        tokens += NAME_OVERHEAD + estimate_tokens(name)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for key in ("name", "arguments"):
                    value = function.get(key)
                    if isinstance(value, str):
                        tokens += estimate_tokens(value)
    return tokens


def _part_tokens(part: dict[str, Any]) -> int:
    if part.get("type") == "image_url":
        image = part.get("image_url")
        low = isinstance(image, dict) and image.get("detail") == "low"
        return IMAGE_TOKENS_LOW if low else IMAGE_TOKENS
    for key in ("text", "refusal"):
        value = part.get(key)
        if isinstance(value, str):
            return estimate_tokens(value)
    return 0


class TokensClassifier:
    """The prompt's token count: in total, per message, and the largest message."""

    name = "tokens"
    outputs: Mapping[str, str] = {"total": "int", "per_message": "list", "max_message": "int"}

    def classify(self, prompt: Prompt) -> Mapping[str, Any]:
        per_message = [_message_tokens(message, prompt) for message in prompt.messages]
        if not per_message:
            return {"total": 0, "per_message": per_message, "max_message": 0}
        return {
            "total": sum(per_message) + REPLY_OVERHEAD,
            "per_message": per_message,
            "max_message": max(per_message),
        }


@hookimpl(trylast=True)
def register_classifiers() -> TokensClassifier:
    return TokensClassifier()
