"""The built-in `task` classifier: kinds, complexity, language, multi-step, and routing
quality on the labelled dev set."""

# Texts in other scripts have letters that look like Latin ones: that is the point here.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar import hookspecs
from sidecar.classifier import OUTPUT_TYPES, Prompt
from sidecar.classifiers import task
from sidecar.classifiers.task import FRONTIER_COMPLEXITY, KINDS, TaskClassifier, tier_for

DEV = Path(__file__).resolve().parents[2] / "shared" / "evaldata" / "dev.jsonl"
CLASSIFIER = TaskClassifier()


def signals(text: str) -> dict[str, Any]:
    return dict(CLASSIFIER.classify(Prompt.from_messages([{"role": "user", "content": text}])))


def kind(text: str) -> str:
    return str(signals(text)["kind"])


ARTICLE = (
    "(Reuters) -- Heavy rains caused flooding across the region on Tuesday, forcing "
    "thousands of residents to leave their homes. Officials said at least 12 people had "
    "died and dozens were missing. Rescue teams used boats to reach villages cut off by the "
    "water, while the weather service warned that more storms were expected this week. "
) * 4
PASSAGE = (
    "The observatory was built on the ridge in 1894 by a private foundation. Its first "
    "director, Clara Weiss, catalogued more than 4,000 variable stars before the telescope "
    "was moved to the university campus in 1931, where it is still used for teaching."
)

POSITIVE = [
    # classification
    (
        "classification",
        "Classify this support ticket as billing, technical or other: 'I was charged twice.'",
    ),
    (
        "classification",
        "Title: Fell apart\nReview: The zipper broke on day two.\n"
        "Is this review positive or negative?",
    ),
    ("classification", "What is the sentiment of this tweet: 'Loving the new update, so smooth!'"),
    # extraction
    (
        "extraction",
        f'Given the following passage\n\n"{PASSAGE}"\n\nanswer the following question.\n\n'
        "Question: Who was the first director?",
    ),
    ("extraction", f"Extract every year mentioned in the text below.\n\n{PASSAGE}"),
    ("extraction", f'Question: When was the telescope moved?\n\nContext: "{PASSAGE}"\n\nAnswer:'),
    # simple_qa
    ("simple_qa", "Who composed the opera Carmen?"),
    ("simple_qa", "Where would you keep milk cold?\n\nOptions:\n- fridge\n- oven\n- mailbox"),
    ("simple_qa", "How do I update the card on my account?"),
    # summarization
    ("summarization", f"Summarize the following news story in two sentences:\n\n{ARTICLE}"),
    ("summarization", f"TL;DR please:\n\n{ARTICLE}"),
    ("summarization", f"{ARTICLE}\n\nWhat are the key points of the article above?"),
    # translation
    ("translation", "Translate into German: The library is closed on public holidays."),
    ("translation", "How would you say 'the shop opens at nine' in Italian?"),
    ("translation", "Переведи на английский: Сегодня очень холодно."),
    # code
    ("code", "Write a Python function that reverses a linked list."),
    (
        "code",
        'def count_vowels(s: str) -> int:\n    """Return the number of vowels in s.\n'
        '    >>> count_vowels("banana")\n    3\n    """\n',
    ),
    ("code", "What does this line do?\n\n```python\nprint(sorted(set(names)))\n```"),
    # code_complex
    (
        "code_complex",
        "Build a FastAPI service with JWT authentication, rate limiting per user and a "
        "PostgreSQL backend, and deploy it with Docker Compose.",
    ),
    (
        "code_complex",
        "Write a lock-free multi-producer queue in C++ with atomics and explain why it is correct.",
    ),
    (
        "code_complex",
        "My Spring Boot app leaks memory after a few hours in production. Heap dumps show "
        "millions of HashMap entries from a cache. How do I find and fix the leak?",
    ),
    # creative
    ("creative", "Write a short poem about the first snow of winter."),
    ("creative", "Pretend you are a medieval innkeeper and greet a tired traveller."),
    ("creative", "Draft a friendly email inviting the team to a Friday picnic."),
    ("creative", "Escribe un cuento corto sobre un faro y una gaviota."),
    # rewrite
    (
        "rewrite",
        "Rewrite this sentence so it is clearer: The report, which was late, which nobody "
        "read, was long.",
    ),
    ("rewrite", "Make this message more polite:\n\nGive me the numbers by noon."),
    (
        "rewrite",
        "Proofread the paragraph below.\n\n"
        "There going to the museum tomorow, weather it rains or not.",
    ),
    # open_qa
    ("open_qa", "How can I get better at remembering people's names?"),
    ("open_qa", "What are some good ways to save money on groceries?"),
    # math
    ("math", "A shop sells pencils at 3 for $1.20. How much do 12 pencils cost?"),
    (
        "math",
        "Nina is twice as old as her brother. In 4 years their ages will add up to 38. "
        "How old is Nina now?",
    ),
    ("math", "Solve for x: 5x - 7 = 18."),
    ("math", "Find the integral of x^2 * e^x."),
    ("math", "Prove that there are infinitely many primes."),
    # reasoning
    ("reasoning", "What if the printing press had never been invented?"),
    (
        "reasoning",
        "Estimate how many tennis balls fit in a school bus. Explain your reasoning step by step.",
    ),
    ("reasoning", "Sam is older than Kim and Kim is older than Lee. Is Lee older than Sam?"),
    # expert
    (
        "expert",
        "Explain how public-key cryptography works and discuss why quantum computers threaten RSA.",
    ),
    (
        "expert",
        "Compare the economic policies of Keynes and Hayek. Which better explains the "
        "1970s stagflation? Justify your answer.",
    ),
]


@pytest.mark.parametrize(("expected", "text"), POSITIVE)
def test_kind(expected: str, text: str) -> None:
    assert expected in KINDS
    got, rule, *_ = task.explain(text)
    assert got == expected, f"{text[:60]!r}: {got} by rule {rule!r}"


def test_every_kind_is_covered() -> None:
    assert {expected for expected, _ in POSITIVE} == set(KINDS)


@pytest.mark.parametrize(
    ("not_expected", "text"),
    [
        ("math", "Who invented calculus?"),
        ("math", "What is the history of the Pythagorean theorem?"),
        (
            "translation",
            "Translate this function to Rust:\n\n```python\ndef add(a, b):\n    return a + b\n```",
        ),
        (
            "translation",
            "Port this Java method to Kotlin: public int twice(int x) { return 2 * x; }",
        ),
        ("code", "What is the boiling point of water at sea level?"),
        (
            "creative",
            "Write a to-do list based on the given information.\n\n"
            "Dentist on Monday at 9. Call the bank. Renew the passport before 12 May.",
        ),
        (
            "math",
            f"{PASSAGE}\n\nBased on the passage above, how many years passed between 1894 "
            "and the move?",
        ),
        ("reasoning", "What is the tallest mountain in Africa?"),
    ],
)
def test_hard_negative(not_expected: str, text: str) -> None:
    assert kind(text) != not_expected


def test_translate_code_is_code() -> None:
    assert (
        kind("Translate this function to Rust:\n\n```python\ndef add(a, b):\n    return a + b\n```")
        == "code"
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # Two code marks and two indented lines.
        ("What does this do?\n    import os\n    return os.getcwd()", True),
        # Three code marks and three code punctuation marks.
        ("Fix this: def f(x): return x; import os; y = {1: 2};", True),
        # Four indented lines dense in code punctuation, whatever the marks.
        ("Summarise:\n    a = {1;\n    b = {2;\n    c = {3;\n    d = {4;", True),
        # Two marks are not enough with fewer than six punctuation marks and no indent.
        ("Fix this: def f(x): return x; y = {1: 2};", False),
        ("Is a<b and c>d here? import this; return that", False),
        # Marks alone, with two punctuation marks, never make code.
        ("Fix this: import os; print(x); y = 3;", False),
    ],
)
def test_code_in_the_prompt(text: str, code: bool) -> None:
    assert task.explain(text)[1].startswith("code in the prompt") is code


def test_short_factual_question_is_light() -> None:
    for text in ("What is the capital of Peru?", "When did the Berlin Wall fall?"):
        assert tier_for(signals(text)) == "light"


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Please explain how the moon affects the tides."),
        (
            "de",
            "Bitte erkläre mir, wie die Gezeiten durch den Mond entstehen und warum es "
            "zweimal am Tag Flut gibt.",
        ),
        ("fr", "Peux-tu m'expliquer pourquoi le ciel est bleu pendant la journée ?"),
        ("es", "¿Puedes explicarme por qué el cielo es azul durante el día?"),
        ("it", "Puoi spiegarmi perché il cielo è blu durante il giorno?"),
        ("pt", "Você pode me explicar por que o céu é azul durante o dia?"),
        ("nl", "Kun je uitleggen waarom de lucht blauw is en hoe dat werkt?"),
        ("pl", "Czy możesz wyjaśnić, dlaczego niebo jest niebieskie? To bardzo ciekawe."),
        ("cs", "Můžeš mi vysvětlit, proč je obloha modrá? Je to pro mě záhada."),
        ("fi", "Voitko selittää, miksi taivas on sininen ja miten se toimii?"),
        ("ru", "Объясни, пожалуйста, почему небо голубое."),
        ("uk", "Поясни, будь ласка, чому небо блакитне і що це означає."),
        ("zh", "请解释一下为什么天空是蓝色的。"),
        ("ja", "空が青いのはなぜですか？わかりやすく説明してください。"),
        ("ko", "하늘이 왜 파란지 설명해 주세요."),
        ("ar", "لماذا السماء زرقاء؟"),
        ("el", "Γιατί ο ουρανός είναι μπλε;"),
        ("hi", "आसमान नीला क्यों होता है?"),
        ("vi", "Tại sao bầu trời có màu xanh?"),
        ("und", "x = [1, 2, 3]"),
    ],
)
def test_language(language: str, text: str) -> None:
    assert signals(text)["language"] == language


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("pl", "Łódź, Gdańsk"),
        ("tr", "Şişli ğ"),
        ("es", "ñandú"),
        # As many letters of two languages: the one listed first in the table wins.
        ("de", "Garçon Straße"),
    ],
)
def test_language_from_letters_alone(language: str, text: str) -> None:
    assert signals(text)["language"] == language


def test_complexity_orders_prompts() -> None:
    trivia = signals("Who wrote Hamlet?")["complexity"]
    rewrite = signals("Rewrite this more formally: see u tmrw")["complexity"]
    word_problem = signals(
        "A tank holds 240 liters and leaks 3 liters an hour while a pump adds 5 liters an "
        "hour. How many hours until it holds 300 liters?"
    )["complexity"]
    assert trivia < rewrite < FRONTIER_COMPLEXITY < word_problem


def test_complexity_grows_with_length_constraints_and_steps() -> None:
    short = signals("Write a poem about rain.")["complexity"]
    demanding = signals(
        "Write a poem about rain. It must have exactly four stanzas, each must rhyme, and it "
        "should avoid the words wet and grey. First describe the clouds, then the storm, then "
        "the street after it, and finally the first sunlight. Include a refrain.\n"
        "1. Keep it under 200 words.\n2. Use present tense.\n3. Give it a title."
    )["complexity"]
    assert short < demanding <= 1.0
    assert short >= 0.0


def test_long_demanding_mid_task_goes_frontier() -> None:
    steps = "\n".join(f"{i}. Section {i} must cover a different stakeholder." for i in range(1, 9))
    brief = (
        "Write a product requirements document for our new mobile banking feature. It must "
        "include exactly eight sections, should never exceed 4000 words, must cite only "
        "internal sources and must avoid jargon. First list the goals, then the risks, then "
        "the metrics, and finally the rollout plan.\n" + steps + "\n" + "Context: " + ARTICLE * 6
    )
    got = signals(brief)
    assert got["complexity"] > FRONTIER_COMPLEXITY
    assert tier_for(got) == "frontier"


def test_light_work_stays_light_and_hard_work_is_hard_whatever_the_load() -> None:
    steps = "\n".join(f"{i}. It must only use the passage." for i in range(1, 12))
    extraction = (
        "Extract every date, first, then every name, then every amount, and finally every "
        "place from the following passage. You must include all of them, exactly as written, "
        "without any other words, at least once each.\n" + steps + "\n\n" + PASSAGE * 80
    )
    got = signals(extraction)
    assert got["kind"] == "extraction"
    assert tier_for(got) == "light"
    assert signals("What is 2 + 2?")["complexity"] > FRONTIER_COMPLEXITY


def test_multi_step() -> None:
    assert signals(
        "First list the ingredients, then explain each step, and finally suggest a wine."
    )["multi_step"]
    assert signals("1. Install the app\n2. Create an account\n3. Invite the team")["multi_step"]
    assert not signals("What is the capital of Peru?")["multi_step"]
    options = "Where do bees live?\n\nOptions:\n- hive\n- ocean\n- cave"
    assert not signals(options)["multi_step"]


def test_outputs_have_their_declared_types() -> None:
    python_types = {"string": str, "double": float, "bool": bool}
    assert set(CLASSIFIER.outputs.values()) <= set(OUTPUT_TYPES)
    for _, text in POSITIVE[:10]:
        got = signals(text)
        assert set(got) == set(CLASSIFIER.outputs)
        for name, cel_type in CLASSIFIER.outputs.items():
            assert type(got[name]) is python_types[cel_type], name
        assert got["kind"] in KINDS
        assert 0.0 <= got["complexity"] <= 1.0


def test_reads_the_last_user_message() -> None:
    prompt = Prompt.from_messages(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Translate into French: good morning"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": [{"type": "text", "text": "Write a haiku about the sea."}]},
        ]
    )
    assert CLASSIFIER.classify(prompt)["kind"] == "creative"


def test_empty_and_odd_prompts() -> None:
    empty = CLASSIFIER.classify(Prompt.from_messages([]))
    assert empty == {"kind": "simple_qa", "complexity": 0.0, "language": "und", "multi_step": False}
    odd = (" ", "?", "```", "\n\n\n", "a" * 30000, "é" * 5000, "日本" * 3000, "\x00", "a \ud800 b")
    for text in odd:
        got = signals(text)
        assert got["kind"] in KINDS


@pytest.mark.parametrize(
    ("sig", "tier"),
    [
        ({"kind": "math", "complexity": 0.1}, "frontier"),
        ({"kind": "reasoning", "complexity": 0.0}, "frontier"),
        ({"kind": "code_complex", "complexity": 0.0}, "frontier"),
        ({"kind": "expert", "complexity": 0.0}, "frontier"),
        ({"kind": "creative", "complexity": FRONTIER_COMPLEXITY + 0.01}, "frontier"),
        ({"kind": "creative", "complexity": FRONTIER_COMPLEXITY}, "mid"),
        ({"kind": "summarization", "complexity": 0.3}, "mid"),
        ({"kind": "translation", "complexity": 0.3}, "mid"),
        ({"kind": "code", "complexity": 0.3}, "mid"),
        ({"kind": "rewrite", "complexity": 0.3}, "mid"),
        ({"kind": "open_qa", "complexity": 0.3}, "mid"),
        ({"kind": "classification", "complexity": 0.1}, "light"),
        ({"kind": "extraction", "complexity": 0.1}, "light"),
        ({"kind": "simple_qa", "complexity": 0.1}, "light"),
        ({"kind": "something_else", "complexity": 0.1}, "mid"),
    ],
)
def test_tier_for(sig: dict[str, Any], tier: str) -> None:
    assert tier_for(sig) == tier


def test_hook_register_classifiers_returns_the_task_classifier() -> None:
    manager = pluggy.PluginManager("sidecar")
    manager.add_hookspecs(hookspecs)
    manager.register(task)
    (registered,) = manager.hook.register_classifiers(settings=None)
    assert isinstance(registered, TaskClassifier)
    assert registered.name == "task"
    assert dict(registered.outputs) == {
        "kind": "string",
        "complexity": "double",
        "language": "string",
        "multi_step": "bool",
    }


def test_dev_set_routing_quality() -> None:
    """Tier accuracy and frontier recall on the non-sensitive rows of dev.jsonl."""
    if not DEV.exists():
        pytest.skip(f"{DEV} is not there")
    total = right = frontier = frontier_below = 0
    for raw in DEV.read_text().splitlines():
        row = json.loads(raw)
        if row["sensitive"]:
            continue
        tier = tier_for(CLASSIFIER.classify(Prompt.from_messages(row["messages"])))
        total += 1
        right += tier == row["expected_tier"]
        if row["expected_tier"] == "frontier":
            frontier += 1
            frontier_below += tier != "frontier"
    assert total > 600
    assert right / total >= 0.85
    assert frontier_below / frontier <= 0.08


# --- the C reader equals its Python twin --------------------------------------------------

_task = pytest.importorskip("sidecar.classifiers._task")

# The C reader as task.py makes it: built here too, so that the C and the Python readers are
# compared even where SIDECAR_PURE_PYTHON keeps task.py on its twin.
_NATIVE_SCAN = partial(
    _task.scan,
    _task.reader(
        task._TABLE,
        task._CLASS_TABLE,
        task._PUNCT,
        task.HEAD,
        task.TAIL,
        task.SHORT,
        task.LINE,
        tuple(mark.encode() for mark in task._CODE_MARKS),
        tuple(label.encode() for label in task._LABELS),
        tuple(lang for lang, _ in task._STOPWORDS),
    ),
)

# Words of the table and the marks the rules look for, among text of every kind: the
# window's edges (SHORT, HEAD, TAIL, LINE) fall anywhere in it.
_PIECES = [
    *list(task._TABLE)[::7],
    b"def ",
    b'"""',
    b"```",
    b"f(x)",
    b"\\frac",
    b"\n    ",
    b"\n\t",
    b"\n1. ",
    b"\n- ",
    b"\n * ",
    "\n\u2022 ".encode(),
    b"();",
    b"=>",
]
_WORDS = st.sampled_from([piece.decode("utf-8", "replace") for piece in _PIECES])
_CHARS = (
    "aZ0 \n\t\r\x0b\x01.,:;?!#'\"-*(){}<>=$^%`\\/éÉßłŁİΣσЖжїپ中日かカ한٣😀\u2022\uff1f\u00a0\ud800"
)
_PROMPTS = (
    st.text(alphabet=st.characters(exclude_categories=()), max_size=1200)
    | st.text(alphabet=_CHARS, max_size=1200)
    | st.lists(st.one_of(_WORDS, st.text(alphabet=_CHARS, max_size=8)), max_size=300).map(" ".join)
)


def _python_reading(text: str) -> tuple[object, ...]:
    """The Python twin's reading, with the counts that `_Text` makes on first use."""
    scanned = task._python_scan(text)
    window, line, tags, qmarks, language = (
        scanned[0],
        scanned[1],
        scanned[2],
        scanned[12],
        scanned[-1],
    )
    raw = window.encode("utf-8", "surrogatepass")
    bullets, numbered = task._window_items(raw)
    given = task._given(tags, line)
    steps = task._count_steps(tags, qmarks, bullets, numbered)
    return (*scanned[:14], task._digit_runs(raw), bullets, numbered, given, steps, language)


@settings(max_examples=400, deadline=None)
@given(_PROMPTS)
def test_scan_equals_the_python_twin(text: str) -> None:
    assert _NATIVE_SCAN(text) == _python_reading(text)


@settings(max_examples=400, deadline=None)
@given(_PROMPTS, st.integers(min_value=-5, max_value=1300))
def test_items_equal_the_python_twin(text: str, end: int) -> None:
    assert _task.items(text, end) == task._python_items(text, end)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n" * 400,
        " " * 400,
        "x" * 300,
        "x" * 301,
        "\n" + "a" * 500,
        "a" * 500 + "\n",
        "a" * 400 + "\n" * 20 + "b" * 5,
        "Title\n\n\n" + "word " * 100 + "\nAnswer:",
        "İSTANBUL ΣΟΦΙΑΣ " * 30,
        "日本語のテキスト。" * 50,
        "a \ud800 b " * 80,
        "\n1. one\n22) two\n333. three\n\u0663. four\n- five\n\u2022 six\n" * 30,
    ],
)
def test_scan_on_edges(text: str) -> None:
    assert _NATIVE_SCAN(text) == _python_reading(text)
    assert _task.items(text, task.OUTLINE) == task._python_items(text, task.OUTLINE)


# The phrases and labels the rules look for, so that generated prompts reach the later rules.
_RULE_PHRASES = st.sampled_from(
    [
        *task._SAY,
        *task._EDITS,
        *task._EDIT_VERBS,
        *task._INFERENCE,
        *task._ROLES,
        *task._LABELS,
        *task._ASK_ANSWER,
        *task._OPEN_STARTS,
        *task._FACT_STARTS,
        *task._MATH_VERBS,
        *task._QUANTITY,
        *task._OPERATORS,
        *task._COUNTERFACTUAL,
        *task._CODE_HELP,
        "step by step",
        "does not belong",
        "which one",
        "(a) (b)",
        "?",
        "\n\n",
        "\n- ",
        "\n1. ",
    ]
)
_RULE_PROMPTS = st.lists(
    st.one_of(_WORDS, _RULE_PHRASES, st.text(alphabet=_CHARS, max_size=8)), max_size=120
).map(" ".join)


def _explain_with(
    scan: Callable[[str], Any], items: Callable[[str, int], tuple[int, int]], text: str
) -> tuple[str, str, float, str, bool]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task, "_scan", scan)
        patch.setattr(task, "_items", items)
        return task.explain(text)


def _explain_natively(text: str) -> tuple[str, str, float, str, bool]:
    return _explain_with(_NATIVE_SCAN, _task.items, text)


def _explain_in_python(text: str) -> tuple[str, str, float, str, bool]:
    return _explain_with(task._python_scan, task._python_items, text)


@settings(max_examples=150, deadline=None)
@given(_PROMPTS | _RULE_PROMPTS)
def test_explain_equals_the_python_twin(text: str) -> None:
    """Every output and the rule chosen, C reader or not, on prompts of every kind."""
    assert _explain_natively(text) == _explain_in_python(text)


@settings(max_examples=60, deadline=None)
@given(_RULE_PROMPTS, _RULE_PROMPTS, st.integers(min_value=0, max_value=2500))
def test_explain_of_long_prompts_equals_the_python_twin(head: str, tail: str, fill: int) -> None:
    """Long prompts: instructions at both ends, a passage between (OUTLINE and the window)."""
    text = f"{head}\n{PASSAGE[: fill % 400]}\n" + "x " * fill + f"\n{tail}"
    assert _explain_natively(text) == _explain_in_python(text)


def test_explain_is_the_same_in_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [text for _, text in POSITIVE]
    if DEV.exists():
        texts += [json.loads(raw)["messages"][0]["content"] for raw in DEV.read_text().splitlines()]
    monkeypatch.setattr(task, "_scan", _NATIVE_SCAN)
    monkeypatch.setattr(task, "_items", _task.items)
    native = [task.explain(text) for text in texts]
    monkeypatch.setattr(task, "_scan", task._python_scan)
    monkeypatch.setattr(task, "_items", task._python_items)
    assert [task.explain(text) for text in texts] == native


def test_reader_rejects_bad_arguments() -> None:
    table, classes, punct = task._TABLE, task._CLASS_TABLE, task._PUNCT
    sizes = (task.HEAD, task.TAIL, task.SHORT, task.LINE)
    phrases = ((b"def ",), (b"text:",), ("en",))
    reader = _task.reader(table, classes, punct, *sizes, *phrases)
    assert _task.scan(reader, "Translate this text: hello")[2] == "TDG."
    with pytest.raises(ValueError, match="two ASCII bytes"):
        _task.reader({b"word": b"x"}, classes, punct, *sizes, *phrases)
    with pytest.raises(ValueError, match="two ASCII bytes"):
        _task.reader({b"": b".."}, classes, punct, *sizes, *phrases)
    with pytest.raises(ValueError, match="256-byte"):
        _task.reader(table, b" " * 10, punct, *sizes, *phrases)
    with pytest.raises(ValueError, match="digits and line breaks"):
        _task.reader(table, b" " * 256, punct, *sizes, *phrases)
    with pytest.raises(ValueError, match="negative"):
        _task.reader(table, classes, punct, -1, 1, 1, 1, *phrases)
    with pytest.raises(TypeError, match="tuples"):
        _task.reader(table, classes, punct, *sizes, [b"def "], (b"text:",), ("en",))
    with pytest.raises(TypeError, match="tuples"):
        _task.reader(table, classes, punct, *sizes, (b"def ",), (b"",), ("en",))
    with pytest.raises(TypeError, match="tuples"):
        _task.reader(table, classes, punct, *sizes, (b"def ",), (b"text:",), (b"en",))
    with pytest.raises(TypeError, match="takes words"):
        _task.reader(table, classes, punct, *sizes)
    with pytest.raises(TypeError, match="a str"):
        _task.scan(reader, b"bytes")
    with pytest.raises(ValueError, match="PyCapsule"):
        _task.scan(object(), "text")
    with pytest.raises(TypeError):
        _task.items(b"bytes", 10)
