"""Built-in classifier `task`: what kind of work a prompt asks for, and how hard it is.

Outputs (`signals.task.<name>`):

- `kind` (string): one of the thirteen kinds below.
- `complexity` (double, 0..1): higher means the prompt needs a stronger model.
- `language` (string): ISO 639-1 code of the prompt's language, or "und".
- `multi_step` (bool): the prompt asks for several steps or parts.

How a prompt is read
--------------------
Only the last user message counts. Its instruction is nearly always at the start or at
the end (a passage, an article or a code listing sits in between), so only the first and
the last line of a prompt (all of a short one, at most LINE characters each) are split
into words. Every word is looked up once in a table that gives it a one-letter *tag*
(translate verb, language name, programming language, summarise verb, math word, question
word ...) and, for function words of one language only, a language; rules then read the
string of tags ("the first line holds a writing verb shortly before a creative form").
A window of the first HEAD and the last TAIL characters is mapped byte by byte to classes
(digits, line breaks, code punctuation, scripts), the bytes of no class dropped, so the
string left to count is short. One call of the C extension `_task` (`scan`) does all of
that and reads the rest the rules need from the window and the two lines: code marks and
formulas, question marks, constraint words, numbered and bulleted lines, digit runs,
given material, steps, and the language when function words alone tell it. Its twin
`_python_scan` (slices, `str.lower`, `bytes.translate`, a dict lookup a word, regular
expressions that start with a line break, so `re` only stops at line breaks) gives the
same results where the extension is not built or SIDECAR_PURE_PYTHON is set; it leaves
the features that only some rules read to be computed on first use. The numbered and
bulleted lines of the first OUTLINE characters are counted (`items`) only for a long
prompt of a mid-tier kind. Nothing reads past HEAD, TAIL and OUTLINE, so the cost does
not grow with the prompt: the median is about 28 µs for 2 KB and 31 µs for 20 KB prompts
on one core of the benchmark machine (`bench/classifiers.py`; 55 and 61 µs with the
Python twin, as before the extension). The C pass takes 4-5 µs of that with warm caches
(up to 10 µs when the window is not ASCII: it is encoded to UTF-8, and lines that are not
ASCII either are lowered by `str.lower`), about 9 µs between other classifiers' work; the
rest is the rules in Python (their phrase searches, about 0.4 µs each, and the calls
between them) and the weighing of languages: 3-4 µs when the function words of a window
disagree, 7-24 µs when it holds letters of other scripts (`_scan` and `_language` timed
alone, with `time.perf_counter_ns`, on the 2 KB prompts that `bench/classifiers.py` makes).

Kinds, in the order their rules are tried (the first rule that matches wins)
---------------------------------------------------------------------------
- `translation`: a translate verb in the instruction ("translate", "übersetze",
  "переведи", "翻译" ...), "how would you say ... in", "into a second language", or "in
  <language>" over a given text. With code in the prompt or a programming language named
  it is code instead ("translate this function to Rust").
- `math` from formulas: LaTeX, `x^2`, `f(x)`, square roots and integrals, or a text dense
  in digits and operators, when no code is present and no language or library is named.
- `code` / `code_complex`: code in the prompt (a fence, a function stub with a docstring,
  or several code marks such as `def `, `import `, `#include`, `=>`, `</`, `();`), or a
  request for code: "implement / debug / refactor", a programming language or library
  named next to code words, a writing verb, a bug, an app, or a question ("how do I ...
  in Kubernetes?"). It is plain `code` for self-contained work: a function stub to
  complete, a short exercise on a classic algorithm or data structure ("reverse a linked
  list", "count the vowels in a string") with no hard requirement, or help on a short
  snippet that does not change it (explain, comment, convert, identify, find the bug).
  Everything else is `code_complex`: real programs with several requirements, frameworks
  and infrastructure, speeding up or fixing long code, concurrency, performance, memory,
  "optimal" or "efficient" demands.
- `summarization`: a summarise verb ("summarize", "TL;DR", "zusammenfassen", "кратко" ...),
  or a weaker cue ("sum up", "outline", "condense", "highlights", "key points", "brief")
  about a given text or a long one.
- `rewrite`: a rewrite verb ("rewrite", "rephrase", "paraphrase", "proofread" ...), an
  edit cue with an edit phrase ("more formal", "fix the grammar", "make it sound ..."),
  an edit cue in the first line over given text, or first / third person.
- `classification`: "classify", "category", "sentiment" in the instruction, or a judgement
  ("positive or negative", "satisfied", "recommend", "flattering") about a review or a
  given text.
- `reasoning` (puzzles): "riddle", "puzzle", "logic", "estimate", "deduce" in the
  instruction, inferences ("if all ... are ...", "can we conclude", "what could be the
  reason"), chains of comparisons ("taller than"), "which does not belong".
- `math` from math words: "solve", "calculate", "probability", "prove", "equation" ... in
  the instruction, unless it is a short question about who found what.
- `creative`: role-play ("pretend", "act as", "imagine you are a", "if you were a", "take
  on the role of", "as a <role>, ..."), or a writing verb shortly before a creative form
  ("write a short poem", "draft an apology email", "tell me a story", "écris une
  histoire"). A long brief for a persona (1500+ characters) is work, not fiction:
  `expert`, or `code_complex` when code is named.
- code again: an app or code word with a writing verb or a bug in the same line.
- `extraction`: "extract / retrieve", or a task on given material: the instruction points
  at it ("the following passage", "the email below", "this text") or labels it
  ("Context:", "Question:"), with a passage long enough to read (a short context with
  answer options is a quiz: `simple_qa`). Asking to explain on a given passage is
  `reasoning`.
- `classification` again when a category word appears anywhere, or "which one" closes a
  long list of labels.
- `simple_qa`: a question with an options list ("Options:", "- a / - b", "(a) (b)"), a
  wrapper that asks to answer a quiz question ("Answer the following question", "is the
  correct answer ...?"), a short factual question (who / whose / where / what year, or
  one that names people or places), a short request about the user's own account or
  order ("cancel my subscription").
- `math` word problems: two or more numbers (digits or number words) with units, money,
  percentages, quantity words or a "how many / how much / how fast" question; math words
  anywhere; "find / solve / compute" over an expression.
- `reasoning`: counterfactuals ("what if X had ..."), "step by step", and "how many"
  over a story that gives nothing to compute from (riddles, Fermi estimates).
- `expert` / `open_qa`: any other question or explain / describe / discuss / list
  request. It is `expert` (frontier) when it goes deep: a scholarly field is named,
  several questions or several explain verbs, "justify", an explanation with parts or
  numbers, or more than 200 characters; otherwise `open_qa`. Why-questions and "how can
  / what are the ..." questions are never mistaken for short factual ones.
- Fallback: a writing verb is `creative`; a short text of numbers with units, operators
  or formulas is `math`; a long unrecognised prompt is `expert` (when in doubt, the
  stronger model); a short personal request is `simple_qa`; the rest `open_qa`.

Complexity
----------
    load = 0.4 * length + 0.05 * min(6, constraints) + 0.05 * min(6, steps)
    complexity = base(kind) + (1 - base(kind)) * 0.55 * load

`length` is log2(1 + chars / 200) / log2(41): 0 for an empty prompt, 1 from 8000
characters. `constraints` counts words such as must, only, without, exactly, at least,
including; `steps` counts numbered and bulleted lines (bullets that are the options of
a question do not count), step words (first, then, finally, step) and questions beyond
the first. `base` is 0.10-0.11 for light kinds, 0.20-0.32 for mid kinds and 0.62-0.70 for
math, reasoning, expert and code_complex, so hard work is always above
FRONTIER_COMPLEXITY (0.6) and a mid-tier kind goes above it only when it is long and full
of requirements and steps; light kinds never do.

Language
--------
Scripts are counted from UTF-8 lead bytes (Cyrillic, Greek, Hebrew, Arabic, Devanagari and
other Indic scripts, Thai, kana, Han, Hangul); Ukrainian and Persian are told from Russian
and Arabic by their own letters, Japanese from Chinese by kana. Latin-script languages
are told apart by function words that belong to one language only (one-letter words are
left out: they are also variable names) and, when those do not settle it, by letters that
only some languages use (ř, ł, ß, ñ, ã, ő, ơ ...). Most evidence wins; "und" when there
is none (a prompt of code or formulas only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import partial
from itertools import repeat
from typing import Any

from .. import native
from ..classifier import Prompt
from ..hookspecs import hookimpl

KINDS = (
    "classification",
    "extraction",
    "simple_qa",
    "summarization",
    "translation",
    "code",
    "code_complex",
    "creative",
    "rewrite",
    "open_qa",
    "math",
    "reasoning",
    "expert",
)
FRONTIER_KINDS = frozenset({"math", "reasoning", "code_complex", "expert"})
LIGHT_KINDS = frozenset({"classification", "extraction", "simple_qa"})

FRONTIER_COMPLEXITY = 0.6
"""Complexity above which a prompt of any kind should go to the frontier tier."""

BASE_COMPLEXITY = {
    "classification": 0.10,
    "extraction": 0.11,
    "simple_qa": 0.10,
    "summarization": 0.25,
    "translation": 0.25,
    "rewrite": 0.20,
    "creative": 0.30,
    "open_qa": 0.30,
    "code": 0.32,
    "math": 0.65,
    "reasoning": 0.65,
    "expert": 0.62,
    "code_complex": 0.70,
}

HEAD = 250
"""Characters read at the start of a prompt, where the instruction usually is ..."""
TAIL = 160
"""... and at its end."""
SHORT = 300
"""A prompt up to this long is tokenised whole."""
LINE = 150
"""Characters tokenised from the first and from the last line of a longer prompt."""
OUTLINE = 1200
"""Characters scanned for numbered and bulleted lines."""


def tier_for(signals: Mapping[str, Any]) -> str:
    """The tier the routing policy gives these `task` signals, sensitivity aside (another
    classifier's signal): frontier for math, reasoning, code_complex and expert, or when
    complexity is above FRONTIER_COMPLEXITY; light for classification, extraction and
    simple_qa; mid for everything else."""
    kind = signals.get("kind")
    if kind in FRONTIER_KINDS or float(signals.get("complexity", 0.0)) > FRONTIER_COMPLEXITY:
        return "frontier"
    if kind in LIGHT_KINDS:
        return "light"
    return "mid"


class TaskClassifier:
    """Kind of task, complexity, language and multi-step flag of the last user message."""

    name = "task"
    outputs: Mapping[str, str] = {
        "kind": "string",
        "complexity": "double",
        "language": "string",
        "multi_step": "bool",
    }

    def classify(self, prompt: Prompt) -> Mapping[str, Any]:
        kind, _rule, complexity, language, multi_step = explain(
            prompt.last_user_text or prompt.text
        )
        return {
            "kind": kind,
            "complexity": complexity,
            "language": language,
            "multi_step": multi_step,
        }


@hookimpl(trylast=True)
def register_classifiers() -> TaskClassifier:
    return TaskClassifier()


# --- the word table ---------------------------------------------------------------------
# Tag letter and words; a word gets the tag of the first group that lists it.
_TAG_WORDS: tuple[tuple[str, str], ...] = (
    # T: translate
    (
        "T",
        "translate translated translating translation translator übersetze übersetzen "
        "übersetzung übersetzt traduire traduis traduisez traduction traduce traducir traduzca "
        "traducción traduzir traduza tradução tradurre traduci traduzione переведи перевести "
        "переведите перевод przetłumacz přelož přeložte käännä översätt oversæt oversett "
        "vertaal çevir terjemahkan dịch",
    ),
    # L: natural languages
    (
        "L",
        "english french german spanish russian chinese japanese korean italian portuguese "
        "dutch polish czech turkish arabic hindi finnish swedish norwegian danish greek hebrew "
        "ukrainian romanian hungarian vietnamese thai indonesian malay bengali urdu persian "
        "farsi swahili tagalog latin catalan bulgarian serbian croatian slovak slovenian "
        "estonian latvian lithuanian icelandic irish welsh malayalam tamil telugu marathi "
        "gujarati punjabi mandarin cantonese englisch deutsch französisch spanisch anglais "
        "français allemand espagnol inglés francés alemán español inglese italiano inglês "
        "английский английском английского русский русском русского немецкий французский "
        "angielski angielskiego polski anglicky angličtiny češtiny englanniksi suomeksi "
        "engelska engels ingilizce language languages langue idioma lingua sprache язык языке",
    ),
    # P: programming languages and code formats
    (
        "P",
        "python java javascript typescript rust golang c++ c# kotlin swift ruby php sql mysql "
        "postgresql sqlite bash powershell html css matlab scala haskell perl lua dart fortran "
        "cobol verilog vhdl solidity lisp clojure elixir erlang ocaml vba regex jsx tsx cuda "
        "glsl hlsl ironpython nodejs js cpp",
    ),
    # F: frameworks, libraries, platforms and tools that are nothing else
    (
        "F",
        "flutter reactjs angular svelte django fastapi laravel springboot godot terraform "
        "kubernetes k8s docker dockerfile ec2 s3 rospy tensorflow pytorch keras numpy scipy "
        "sklearn tkinter pyqt pygame opencv redis kafka nginx expressjs nextjs jquery arduino "
        "swiftui wordpress selenium pyspark hadoop graphql grpc websocket oauth jwt cmake "
        "cmakelists gradle maven webpack ubuntu powerbi ffmpeg matplotlib jupyter "
        "huggingface langchain openai api apis sdk wget npm conda mongodb elasticsearch "
        "firebase supabase heroku vercel systemd webgl opengl vulkan directx stm32 esp32 "
        "databricks bigquery dotnet symfony nestjs hibernate junit pytest postgres",
    ),
    # f: names of software that are also ordinary words (Android, Unity, pandas, Spark)
    (
        "f",
        "react flask unity unreal aws gcp azure ecs pandas raspberry android ios jira excel "
        "spark airflow blender linux tableau cli curl pip cron ssh bootstrap tailwind shader "
        "shaders blockchain ethereum etl snowflake gtk mongo",
    ),
    # S: summarise
    (
        "S",
        "summarize summarise summarized summarised summarizing summarising summary summaries "
        "summarization summarisation tldr tl recap synopsis zusammenfassung zusammenfassen "
        "résumer résumez résume resumen resumir riassunto riassumi sintetizza streszczenie "
        "streść podsumuj shrnutí shrň shrnout tiivistä yhteenveto кратко резюме перескажи "
        "суммируй özetle ringkas ringkasan",
    ),
    # R: rewrite
    (
        "R",
        "rewrite rewritten rewriting rephrase rephrasing paraphrase paraphrasing reword "
        "rewording proofread proofreading reformulate перепиши переформулируй перефразируй "
        "umschreiben umformulieren formuliere reformule reformuler réécris réécrire reescribe "
        "reformula riscrivi przepisz přepiš",
    ),
    # E: extract
    (
        "E",
        "extract extracting extraction retrieve извлеки extrahiere extrais extrae",
    ),
    # K: classify
    (
        "K",
        "classify categorize categorise category categories sentiment polarity spam genre "
        "классифицируй категория категорию kategorie catégorie categoría",
    ),
    # V: reviews
    ("V", "review reviews reviewer"),
    # C: code
    (
        "C",
        "code coding snippet codebase algorithm algorithms код кода коде программу скрипт "
        "código programa función fonction programme funktion kód kodu kod funkcja funkci",
    ),
    # I: code verbs
    ("I", "implement debug refactor compile"),
    # p: code nouns that also occur in prose
    (
        "p",
        "program programs function functions method methods library module variable variables "
        "array arrays loop recursion recursive struct pointer runtime syntax implementation "
        "implementing debugging parser endpoint repository database query dataframe class",
    ),
    # W: software products to build
    (
        "W",
        "website websites webpage web app apps gui ui frontend backend login button dashboard "
        "chatbot bot server plugin widget component",
    ),
    # e: textbook exercises (classic algorithms and data structures)
    (
        "e",
        "simple basic basics fibonacci factorial palindrome palindromes sort sorted sorting "
        "search queue stack stacks reverse reverses anagram anagrams binary fizzbuzz linked "
        "string strings element elements number numbers digits vowels words "
        "tree trees node nodes substring subsequence duplicates occurrences highest lowest "
        "largest smallest longest shortest maximum minimum nth validate validation kth "
        "majority common",
    ),
    # X: what makes code hard
    (
        "X",
        "atomic concurrency concurrent parallel parallelism thread threads threading "
        "multithreading multiprocessing async asynchronous distributed scalable scalability "
        "production secure security cluster latency complexity optimal optimize optimise "
        "optimized optimization efficient efficiently efficiency faster performance speed "
        "deadlock memory microservice microservices architecture serialization serialize "
        "slow sluggish hangs freezes leak leaks "
        "atomics lock mutex semaphore "
        "animation authentication encryption realtime benchmark throughput cache caching "
        "bottleneck interpreter kernel simulation rendering pipeline deploy deployment "
        "infrastructure migrate migration responsive upgrade ускорить оптимизировать быстрее",
    ),
    # B: bugs and fixes
    (
        "B",
        "fix bug bugs error errors exception traceback broken crash crashes failing doesn't "
        "isn't warning stacktrace исправь поправь ошибка ошибку fehler erreur corrige",
    ),
    # M: math (a math task on its own)
    (
        "M",
        "solve calculate calculation compute equation equations integral integrate derivative "
        "differentiate probability probabilities prove theorem lemma remainder divisible "
        "divisor integers primes polynomial logarithm eigenvalue eigenvalues determinant "
        "variance sqrt converge combinatorics permutations modulo gcd lcm inequality quadratic "
        "affine piecewise trigonometric hypotenuse parabola asymptote calculus algebra "
        "geometry arithmetic решить реши решите вычисли вычислите вычислить найдите задача "
        "уравнение вероятность равна равен равно berechne berechnen gleichung calcule calculer "
        "résoudre résous équation calcula calcular resuelve resolver ecuación calcola risolvi "
        "oblicz rozwiąż vypočítej vyřeš vyřešit příklad laske ratkaise hitung tính giải",
    ),
    # m: math words that also occur in ordinary questions
    (
        "m",
        "integer prime factorial matrix matrices vector vectors median deviation percentage "
        "ratio area volume perimeter triangle rectangle circle radius diameter angle formula "
        "infinity geometric fraction fractions exponent sine cosine coordinates statistic "
        "statistics hypothesis average multiplied divided product difference length distance "
        "speed width height rate interest diámetro longitud suma",
    ),
    # h: history (a question about mathematics' past is not math)
    (
        "h",
        "history historical invented inventor invention discovered discovery historian "
        "biography origin origins century",
    ),
    # Y: reasoning
    (
        "Y",
        "puzzle puzzles riddle riddles logic logical logically deduce deduction estimate "
        "estimation reasoning paradox hypothetically hypothetical counterfactual brainteaser "
        "syllogism necessarily",
    ),
    # !: say (how would you say this in ...)
    ("!", "say"),
    # O: role-play
    ("O", "pretend roleplay persona embody impersonate"),
    # w: words of role-play phrases ("act as", "imagine you are", "you are a")
    ("w", "act imagine picture role you"),
    # a: creative forms
    (
        "a",
        "story stories poem poems poetry haiku limerick song songs lyrics screenplay dialogue "
        "dialog dialogues letter blog essay speech tweet slogan slogans headline headlines "
        "tagline joke jokes novel chapter scene episode fable tale tales sonnet ballad rap "
        "advertisement ad announcement bio premise trailer narrative monologue verse verses "
        "rhyme toast eulogy invitation caption motto anecdote fanfic fanfiction character "
        "characters post email note scenario история историю рассказ стих стихи стихотворение "
        "диалог сказку сказка песню песня трейлер сценарий письмо geschichte gedicht lied "
        "histoire poème poésie conte chanson lettre roman prémisse historia cuento poema "
        "canción carta storia poesia racconto canzone história conto evangelho opowiadanie "
        "wiersz příběh báseň tarina runo hikaye şiir cerita puisi truyện thơ",
    ),
    # A: writing verbs
    (
        "A",
        "write writing compose draft create generate invent imagine craft continue narrate make "
        "construct propose напиши написать сочини придумай создай создадим составь schreibe "
        "schreib verfasse erstelle écris écrivez rédige crée invente fais donner escribe "
        "redacta crea inventa scrivi componi escreva crie napisz stwórz napiš vytvoř kirjoita "
        "skriv schrijf yaz tulis viết",
    ),
    # z: tell (a story / a joke)
    ("z", "tell"),
    # l: comparatives of logic puzzles ("Alice is taller than Bob")
    ("l", "taller older younger shorter faster slower heavier lighter richer"),
    # G: given material
    (
        "G",
        "passage passages context paragraph paragraphs article articles text texts excerpt "
        "document documents plot transcript conversation conversations chat information info "
        "data sentence sentences message messages report statement",
    ),
    # D: pointing at given material
    (
        "D",
        "following given above below provided presented attached preceding aforementioned this "
        "these enclosed folgenden suivant suivante siguiente seguente seguinte следующий "
        "следующего следующем",
    ),
    # Q: question words
    (
        "Q",
        "what who when where which why how whom whose что кто где когда почему как какой "
        "сколько wer wo wann warum welche qué quién dónde cuándo cómo cuál cuánto où quand "
        "pourquoi comment quel quelle combien",
    ),
    # q: question / answer
    (
        "q",
        "question questions answer answers exam wondering вопрос ответ frage antwort réponse "
        "pregunta",
    ),
    # o: options
    ("o", "options choices alternatives варианты"),
    # Z: scholarly fields
    (
        "Z",
        "physics quantum chemistry chemical biology biological molecular genetics genetic dna "
        "economics philosophy philosophical philosopher ethics ethical psychology "
        "psychological sociology anthropology theory theories principles principle mechanism "
        "mechanisms thermodynamics relativity evolution evolutionary neuroscience linguistics "
        "literature literary political geopolitical scientific engineering medical clinical "
        "legal constitutional epistemology metaphysics astronomy astrophysics geology ecology "
        "orbital satellite entanglement superposition theology mortality artworks masterpieces "
        "curriculum pedagogy lesson radiation energy gravity",
    ),
    # J: explain, list, analyse
    (
        "J",
        "explain justify describe discuss analyze analyse analysis elaborate compare contrast "
        "evaluate assess illustrate clarify interpret critique argue examine define list share "
        "suggest provide give объясни опиши erkläre explique explica spiega wyjaśnij vysvětli "
        "selitä",
    ),
    # s: summary cues that need a given text
    (
        "s",
        "outline condense condensed gist highlights essentials brief briefly overview "
        "takeaways nutshell sum points",
    ),
    # r: edit cues that need a given text
    (
        "r",
        "grammar grammatical spelling punctuation typos tone formal informal professional "
        "polite concise wordy clearer clarity simplify ambiguous ambiguity tense passive "
        "polish edit shorten correct fluent readability simpler sound clearly",
    ),
    # k: judgements of a given review
    (
        "k",
        "positive negative satisfied dissatisfied unsatisfied flattering unflattering "
        "favorable unfavorable favourable recommend neutral sarcastic toxic offensive belong "
        "belongs buying",
    ),
    # N: number words
    (
        "N",
        "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
        "ninety hundred thousand million billion half twice thrice quarter fifth dozen double "
        "triple once",
    ),
    # U: quantities in word problems
    (
        "U",
        "dollars dollar cents cent euros miles mile km kilometers meters feet foot inches inch "
        "pounds kg grams liters gallons hours hour minutes minute days weeks months years each "
        "per total altogether remaining cost costs price profit sells sold bought buys earn "
        "earns earned spend spends spent save saves saved pay pays paid times percent "
        "value cm mm kg lb lbs psi ml mph kmh volt volts ohm ohms daily weekly monthly "
        "quarterly yearly annually watt watts kw kwh hz mhz ghz usd eur",
    ),
    # c: constraints
    (
        "c",
        "must should only exactly without never avoid ensure include including limit maximum "
        "minimum least don't cannot can't require required requirement requirements constraint "
        "constraints strictly within max min mandatory also additionally however",
    ),
    # t: steps
    (
        "t",
        "step steps first firstly then next finally afterwards secondly thirdly lastly stage "
        "stages phase phases part parts",
    ),
    # y: the user speaking of themselves
    ("y", "my i me i'm mine myself i've"),
    # b: accounts and orders
    (
        "b",
        "account card balance subscription order payment password bill refund delivery "
        "statement loan transfer invoice",
    ),
    # %: script (code or screenplay)
    ("%", "script scripts"),
    # #: code keywords
    (
        "#",
        "def elif println printf console const var void public static fn func lambda self "
        "nullptr std cout endl namespace typedef #include #define #!/bin/bash import return "
        "int bool str dict",
    ),
)

# Function words of one language each (a word listed for two languages is dropped).
_STOPWORDS: tuple[tuple[str, str], ...] = (
    (
        "en",
        "the and of to is in that it for you with this are be on what how was have not as can "
        "from by an will which do my your if they there their would should has been about into "
        "each then than does when who where why please write me we our these those it's don't "
        "after before more many much also only other some any all just like make give "
        "following given answer question find tell help explain need want could story about "
        "between because should them its were been being here",
    ),
    (
        "de",
        "der die das und ist nicht ein eine einen einem zu den mit sich auf für von dem des "
        "auch es wie ich sie werden oder hat im wird sind nach bei aus wenn kann noch nur über "
        "diese dieser wir haben keine kein darf jeder seine ihre zum zur gegen ohne sowie "
        "durch dass daß bitte schreibe erkläre kannst",
    ),
    (
        "fr",
        "le la les et des est une un du que qui dans pour pas sur au avec ce il je ne se sont "
        "mais vous aux cette ces leur elle nous être fait comme tout ou où très été sa son ses "
        "moi c'est j'ai qu'il ça fais peux faire avoir ma mon écris explique donne",
    ),
    (
        "es",
        "el la los las un una de del en que y por con para es se no al lo como más su pero sus "
        "le ya este está esta son muy también cuál qué cómo hay entre sobre cuando todo mi yo "
        "tiene puede ser sin eso esto desde escribe dame dime explica puedes necesito",
    ),
    (
        "it",
        "il di che per sono non con del della gli è da nel alla questo come anche più delle "
        "degli dei nella una un la ma cosa sei ho hai ha essere questa perché scrivi spiega "
        "puoi",
    ),
    (
        "pt",
        "os de que do da em um uma para com não é dos das no na por mais ao seu sua você são "
        "também ele ela isso este esta muito já quando seus suas pelo pela nos nas foi ser tem "
        "há escreva explique",
    ),
    (
        "nl",
        "het een en van ik te dat die niet op met zijn voor er maar ook als aan wordt naar bij "
        "deze dit wat hoe kan je hij zij worden heeft werd om tot uit nog geen",
    ),
    (
        "pl",
        "nie na się jest że do to jak ale po co tak za od jego czy przez dla są być jestem "
        "mnie może tylko już tego oraz które który która żeby jeśli bardzo będzie ich",
    ),
    (
        "cs",
        "je se na že to do jako ale pro by jsou jeho ve tak které který která aby při po co "
        "být nebo jsem jak tento tato toto není také jen už mi mě si bych když jsme",
    ),
    (
        "fi",
        "ja on ei se että oli hän mutta ovat kun niin tai myös kuin jo jos mitä tämä joka ole "
        "olla voi minä sinä me he tässä siitä kanssa vain mikä miten miksi",
    ),
    (
        "sv",
        "och att det som en på är av för med till den har de inte om ett jag var men sig så "
        "kan hur vad eller detta skulle",
    ),
    (
        "tr",
        "bir ve bu da de için ile ne çok daha gibi olan ama kadar mi ben sen değil olarak var "
        "yok nas\u0131l neden şu her",
    ),
    (
        "id",
        "yang dan di ini itu dengan untuk dari dalam tidak akan pada adalah ke juga atau ada "
        "bisa saya kita kami mereka sudah hanya oleh sebuah apa bagaimana",
    ),
    (
        "vi",
        "và của là có cho một những các được trong không người với này để đã thì khi cũng như "
        "từ hay bạn tôi",
    ),
    (
        "ro",
        "și în cu nu pe că este mai sunt din care pentru ce sau fost acest această lui foarte",
    ),
    (
        "hu",
        "az és hogy nem egy meg van ez azt volt csak már mint vagy még el ki fel kell lehet "
        "nagyon minden",
    ),
)

# Letters that only some Latin-script languages use, worth two function words each.
_LETTERS: tuple[tuple[str, str], ...] = (
    ("cs", "řěů"),
    ("pl", "łąęśźżń"),
    ("ro", "șță"),
    ("tr", "ğ\u0131ş"),
    ("hu", "őű"),
    ("vi", "ơưđ"),
    ("pt", "ãõ"),
    ("es", "ñ¿¡"),
    ("de", "ß"),
    ("fr", "çœ"),
)
_LANGUAGE_OF_LETTER = {letter: lang for lang, letters in _LETTERS for letter in letters}
_LANGUAGE_LETTERS = re.compile("[" + "".join(map(re.escape, _LANGUAGE_OF_LETTER)) + "]")
"""Any of those letters, all found in one scan of the window (most are absent)."""
_UKRAINIAN = ("\u0456", "\u0457", "\u0454", "\u0491")  # Ukrainian i, yi, ye, ghe
_PERSIAN = ("پ", "چ", "ژ", "گ")
_FULLWIDTH_QUESTION = "\uff1f"

# Every byte of the window is mapped to a class letter (one `translate`, or one loop in C);
# counting the letters gives digits, line breaks, code punctuation ... and scripts, by the
# lead byte of their UTF-8 sequences.
_BYTE_CLASSES = (
    (0x30, 0x39, "0"),  # digits
    (0x0A, 0x0A, "n"),  # line break
    (0x3F, 0x3F, "q"),  # question mark
    (0x7B, 0x7B, "p"),  # { } ; < = > (code)
    (0x7D, 0x7D, "p"),
    (0x3B, 0x3B, "p"),
    (0x3C, 0x3E, "p"),
    (0x60, 0x60, "b"),  # backquote
    (0x5E, 0x5E, "h"),  # ^
    (0x24, 0x24, "d"),  # $
    (0x25, 0x25, "%"),
    (0x22, 0x22, "u"),  # double quote
    (0x2D, 0x2D, "-"),  # - and * (bullets)
    (0x2A, 0x2A, "-"),
    (0xE2, 0xE2, "x"),  # symbols and punctuation: square root, integral, quotes, dashes
    (0xEF, 0xEF, "f"),  # fullwidth forms, such as the fullwidth question mark
    (0xC3, 0xC9, "L"),  # Latin letters with diacritics (U+00C0..U+027F)
    (0xCD, 0xCF, "G"),  # Greek
    (0xD0, 0xD3, "R"),  # Cyrillic
    (0xD6, 0xD7, "H"),  # Hebrew
    (0xD8, 0xDB, "A"),  # Arabic
    (0xE0, 0xE0, "I"),  # Indic scripts and Thai (told apart by the second byte)
    (0xE1, 0xE1, "V"),  # Georgian, Vietnamese letters (Latin Extended Additional)
    (0xE3, 0xE3, "J"),  # kana and CJK punctuation
    (0xE4, 0xE9, "Z"),  # Han
    (0xEA, 0xED, "K"),  # Hangul
)
_SCRIPT_OF = {
    ord("R"): "ru",
    ord("G"): "el",
    ord("H"): "he",
    ord("A"): "ar",
    ord("Z"): "zh",
    ord("J"): "ja",
    ord("K"): "ko",
    ord("I"): "indic",
}
_INDIC: tuple[tuple[tuple[bytes, ...], str], ...] = (
    ((b"\xe0\xa4", b"\xe0\xa5"), "hi"),
    ((b"\xe0\xa6", b"\xe0\xa7"), "bn"),
    ((b"\xe0\xae", b"\xe0\xaf"), "ta"),
    ((b"\xe0\xb0", b"\xe0\xb1"), "te"),
    ((b"\xe0\xb4", b"\xe0\xb5"), "ml"),
    ((b"\xe0\xb8", b"\xe0\xb9"), "th"),
)
_KANA = (b"\xe3\x81", b"\xe3\x82", b"\xe3\x83")
_VIETNAMESE = (b"\xe1\xba", b"\xe1\xbb")

# Chinese and Japanese have no spaces to split on: these words are looked for as
# substrings of the instruction (only when it holds Han or kana).
_CJK_WORDS: tuple[tuple[str, str], ...] = (
    ("翻译", "T"),
    ("翻訳", "T"),
    ("总结", "S"),
    ("摘要", "S"),
    ("概括", "S"),
    ("要約", "S"),
    ("python", "P"),
    ("java", "P"),
    ("c++", "P"),
    ("sql", "P"),
    ("html", "P"),
    ("matlab", "P"),
    ("代码", "C"),
    ("脚本", "C"),
    ("爬虫", "C"),
    ("程序", "C"),
    ("コード", "C"),
    ("プログラム", "C"),
    ("输入", "p"),
    ("输出", "p"),
    ("函数", "p"),
    ("関数", "p"),
    ("数学", "M"),
    ("求", "M"),
    ("计算", "M"),
    ("證明", "M"),
    ("证明", "M"),
    ("概率", "M"),
    ("確率", "M"),
    ("方程", "M"),
    ("积分", "M"),
    ("積分", "M"),
    ("原函数", "M"),
    ("个数", "M"),
    ("面积", "M"),
    ("故事", "a"),
    ("诗", "a"),
    ("詩", "a"),
    ("小说", "a"),
    ("物語", "a"),
    ("台詞", "a"),
    ("小説", "a"),
    ("歌詞", "a"),
    ("キャラクター", "a"),
    ("写", "A"),
    ("書いて", "A"),
    ("作成", "A"),
    ("分类", "K"),
    ("什么", "Q"),
    ("如何", "Q"),
    ("吗", "Q"),
    ("解释", "J"),
    ("説明", "J"),
)

# Phrases looked for in the instruction (first and last line), never in the whole text.
_SAY = (
    "say this in",
    "say that in",
    "say it in",
    "how do you say",
    "how would you say",
    "how to say",
    "second language",
    "another language",
)
_EDITS = (
    "more formal",
    "less formal",
    "more polite",
    "more professional",
    "more concise",
    "more clearly",
    "sound more",
    "make it more",
    "make it sound",
    "simpler words",
    "the grammar",
)
_EDIT_VERBS = ("turn this", "turn it", "make this", "make it", "change this", "change the")
_INFERENCE = ("if all ", "could be the reason", "can we conclude", "does it follow")
_ROLES = (
    "act as",
    "imagine you are a",
    "imagine yourself",
    "picture yourself",
    "yourself as a",
    "if you were a",
    "suppose you are a",
    "you are a ",
    "the role of a",
    "take on the role",
    "play the role",
    "embrace the role",
    "assume the role",
)
_LABELS = ("context:", "passage:", "article:", "plot:", "question:", "review:", "text:")
_ASK_ANSWER = (
    "answer the following question",
    "answer this question",
    "answer the question",
    "formulate an answer",
    "question 1.",
    "i was wondering",
    "answer this:",
    "can you answer",
    "correct answer",
    "right answer",
    "valid answer",
    "best answer",
)
_OPEN_STARTS = (
    "how can",
    "how do",
    "how does",
    "how should",
    "how might",
    "how could",
    "how to",
    "why",
    "what are",
    "what is the best",
    "what's the best",
    "what is the difference",
    "what's the difference",
    "what would",
    "is it",
    "should",
    "do we",
    "do you",
    "can you",
    "could you",
    "in what ways",
    "to what extent",
)
_FACT_STARTS = ("who ", "whom ", "whose ", "when ", "where ", "what year", "in what", "in which")
_MATH_VERBS = ("find ", "solve ", "compute ", "calculate ", "evaluate ", "simplify ", "prove ")
_QUANTITY = ("how many", "how much", "how old", "how long", "how far", "how fast")
_OPERATORS = ("+", " * ", "\u00d7", "\u00f7", " / ", "=")  # with the times and divide signs
_WHO = ("who ", "whom ", "when did ", "when was ", "when were ", "when is ", "where ")
_COUNTERFACTUAL = (" had ", " were ", " never ", " not ")
_CODE_MARKS = (
    "def ",
    "import ",
    "return ",
    "#include",
    "print(",
    "self.",
    "console.",
    "function ",
    "public ",
    "const ",
    "=>",
    "</",
    "();",
    ") {",
    "){",
)
_CODE_HELP = (
    "explain",
    "comment",
    "convert",
    "translate",
    "what this",
    "what does",
    "how does this",
    "identify",
)

# Patterns over the tag string (one letter a word, "/" a line break), never over the text.
_LIST_ITEM = re.compile(r"\n[ \t]*(?:(\d)\d?[.)]|[-*•])[ \t]")
"""A numbered ("1." "2)") or bulleted ("-" "*" "•") line; the digit is captured."""
_GIVEN = re.compile(r"D[^DG/]{0,3}[GaV%]|[GaV][^/]?D")
"""Given material: a pointer before a noun ("the following passage", "this review") or
after it ("the data below")."""
_CREATIVE = re.compile(r"A[^/]{0,6}[aV%]|A[^/]{0,3}G|z[^/]{0,3}a")
"""A writing verb shortly before a creative form: "write a short poem", "tell me a story"."""


def _build_table() -> dict[bytes, bytes]:
    """UTF-8 word -> its tag letter and its language letter ("." for none)."""
    tags: dict[str, str] = {}
    for tag, words in _TAG_WORDS:
        for word in words.split():
            tags.setdefault(word, tag)
    owners: dict[str, set[str]] = {}
    for lang, words in _STOPWORDS:
        for word in words.split():
            if len(word) > 1:  # one-letter words are also variable names in code
                owners.setdefault(word, set()).add(lang)
    langs = {word: next(iter(o)) for word, o in owners.items() if len(o) == 1}
    table = {
        word.encode(): (tags.get(word, ".") + _LANG_CODES.get(langs.get(word, ""), ".")).encode()
        for word in tags.keys() | langs.keys()
    }
    table[b"\x01"] = b"/."  # a line break
    return table


_LANG_CODES = {lang: chr(ord("A") + i) for i, (lang, _) in enumerate(_STOPWORDS)}
_LANG_BY_CODE = {ord(code): lang for lang, code in _LANG_CODES.items()}
_TABLE = _build_table()
_NO_WORD = repeat(b"..")
_PUNCT = b'!"$%&()*,./:;<=>?@[\\]^_`{|}~-'
_PUNCT_TABLE = bytes.maketrans(_PUNCT, b" " * len(_PUNCT))
_CLASS_TABLE = bytes(
    next((ord(c) for lo, hi, c in _BYTE_CLASSES if lo <= b <= hi), ord(" ")) for b in range(256)
)
_BLANK = bytes(b for b in range(256) if _CLASS_TABLE[b] == ord(" "))
"""The bytes of no class (letters, blanks, most punctuation)."""
_WINDOW_ITEM = re.compile(
    rb"\n(?:([0-9])|[" + b"".join(b"\\x%02x" % b for b in _BLANK) + rb"]?[-*])"
)
"""A numbered or bulleted line of the window: a line break, then a digit, or a bullet with
at most one byte of no class before it; the digit is captured."""
_NOT_SCRIPT = bytes(b for b in range(256) if chr(b) not in "LGRHAIVJZK")
_L, _V = ord("L"), ord("V")  # `int in bytes` is fast, `bytes in bytes` slow
_ASCII = bytes(range(128))
"""Deleted from the UTF-8 of a window, they leave its letters of other alphabets, each whole
(an ASCII byte is never part of a longer UTF-8 sequence)."""
_DIGIT_RUNS = bytes(ord("0") if 48 <= b <= 57 else ord(" ") for b in range(256))
"""Digits to "0", everything else to spaces: the numbers of a text are its words."""
_SHAPES = bytes(
    ord("A")
    if 65 <= b <= 90
    else ord(" ")
    if b in (9, 10, 32)
    else ord(".")
    if b in b".?!:"
    else ord("a")
    for b in range(256)
)
"""Capitals to "A", blanks to " ", sentence ends to ".", anything else to "a"."""
_log2 = math.log2
_LOG_LONG = _log2(1 + 8000 / 200)
_UTF8, _LONE = "utf-8", "surrogatepass"  # a lone surrogate (valid in JSON) must not raise


_Scan = tuple[
    str,
    str,
    str,
    bytes,
    str,
    str,
    str,
    str,
    bool,
    bool,
    bool,
    bool,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    str,
]


def _python_scan(text: str) -> _Scan:
    """What `_Text` reads of a prompt, in the order of the C `scan`: the window, the lowered
    instruction lines, one tag letter a word of them, the language letters of the words that
    have one, the class letters of the window's bytes, the tags of the first and of the last
    line (`_zones`) and of the instruction, whether a code or library is named, whether the
    window holds a function stub, code, a formula, its question marks, constraint words,
    then its digit runs, bulleted and numbered lines, whether given material is pointed at
    and the window's steps (-1 here: `_Text` works those out on first use; the C `scan` in
    the same pass), and the language when function words alone tell it ("" when they do
    not agree or the window holds letters of other scripts: `_language` decides)."""
    if len(text) <= SHORT:
        window = text
        line = text.lower()
    else:
        window = f"{text[:HEAD]}\n{text[-TAIL:]}"
        line = f"{_first_line(window)}\n{_last_line(window)}".lower()
    words = line.encode(_UTF8, _LONE).replace(b"\n", b" \x01 ").translate(_PUNCT_TABLE).split()
    codes = b"".join(map(_TABLE.get, words, _NO_WORD))
    tags = codes[0::2].decode()
    raw = window.encode(_UTF8, _LONE)
    # The class letters of the window's bytes, bytes of no class left out: a short string.
    # (It is a `str`: `b"Z" in bytes` costs ten times `"Z" in str`.)
    classes = raw.translate(_CLASS_TABLE, _BLANK).decode()
    first, last = _zones(tags)
    # A short prompt is all instruction.
    inst = tags if len(tags) <= 60 else first + last
    code_named = "P" in inst or "F" in inst or "f" in inst

    size = len(raw)
    code_punct = classes.count("p") if "p" in classes else 0
    stub = "def " in window and ('"""' in window or "'''" in window)
    has_code = stub or ("b" in classes and "```" in window)
    if not has_code and (code_punct >= 2 or "#" in tags or "\n    " in window):
        # Code: three code marks and three code punctuation marks, or two marks and six
        # punctuation marks or two indented lines, or four indented lines dense in
        # punctuation. The marks (a substring search each) are looked for only when they
        # can decide, and only until there are enough.
        indented = window.count("\n    ") + window.count("\n\t")
        has_code = indented >= 4 and code_punct * 25 > size
        if not has_code and (code_punct >= 3 or indented >= 2):
            has_code = _has_marks(window, 2 if code_punct >= 6 or indented >= 2 else 3)
    formula = "h" in classes or (
        code_punct * 40 > size and classes.count("0") * 10 > size and not has_code
    )
    if not formula and "(" in window:
        formula = "f(x)" in window or (code_punct > 0 and "\\frac" in window)
    if not formula and "x" in classes:
        formula = "√" in window or "∫" in window
    qmarks = classes.count("q") if "q" in classes else 0
    if "f" in classes:
        qmarks += window.count(_FULLWIDTH_QUESTION)
    constraints = tags.count("c") if "c" in tags else 0
    hits = codes[1::2].replace(b".", b"")
    language = ""
    if window.isascii() or not classes.encode().translate(None, _NOT_SCRIPT):
        if not hits:
            language = "und"
        elif hits.count(hits[0]) == len(hits):
            language = _LANG_BY_CODE[hits[0]]
    return (
        window,
        line,
        tags,
        hits,
        classes,
        first,
        last,
        inst,
        code_named,
        stub,
        has_code,
        formula,
        qmarks,
        constraints,
        -1,
        -1,
        -1,
        -1,
        -1,
        language,
    )


def _given(tags: str, line: str) -> bool:
    """The instruction points at given material or labels it."""
    return _GIVEN.search(tags) is not None or (
        ":" in line
        and ("q" in tags or "G" in tags or "V" in tags)
        and any(map(line.__contains__, _LABELS))
    )


def _count_steps(tags: str, qmarks: int, bullets: int, numbered: int) -> int:
    """Steps: step words, questions beyond the first, bulleted and numbered lines."""
    # Bullets are steps, unless they are the options of a question.
    if "o" in tags or "q" in tags:
        bullets = 0
    return tags.count("t") + max(0, qmarks - 1) + bullets + numbered


def _digit_runs(raw: bytes) -> int:
    """The numbers (digit runs) of UTF-8 text."""
    return len(raw.translate(_DIGIT_RUNS).split())


def _window_items(raw: bytes) -> tuple[int, int]:
    """Bulleted and numbered lines of the UTF-8 window."""
    items = _WINDOW_ITEM.findall(raw)
    bullets = items.count(b"")
    return bullets, len(items) - bullets


def _python_items(text: str, end: int) -> tuple[int, int]:
    """Bulleted and numbered lines of text[:end] (the pattern starts with a line break, so
    `re` only stops at line breaks)."""
    items = _LIST_ITEM.findall(text, 0, end)
    bullets = items.count("")
    return bullets, len(items) - bullets


_scan: Callable[[str], _Scan] = _python_scan
_items: Callable[[str, int], tuple[int, int]] = _python_items
try:
    native.allow()
    from . import _task
except ImportError:  # not built (no C compiler) or SIDECAR_PURE_PYTHON: the same results, slower
    pass
else:
    _scan = partial(
        _task.scan,
        _task.reader(
            _TABLE,
            _CLASS_TABLE,
            _PUNCT,
            HEAD,
            TAIL,
            SHORT,
            LINE,
            tuple(mark.encode() for mark in _CODE_MARKS),
            tuple(label.encode() for label in _LABELS),
            tuple(lang for lang, _ in _STOPWORDS),  # in the order of their letters
        ),
    )
    _items = _task.items


class _Text:
    """The cheap features of one prompt that the rules read. Those that only some rules
    need (`given`, `numbers`, the listed lines and `steps`) are computed on first use, when
    `_scan` has not counted them already."""

    __slots__ = (
        "_digits",
        "_given",
        "_listed",
        "_numbered",
        "_numbers",
        "_window_steps",
        "classes",
        "code_named",
        "constraints",
        "first",
        "formula",
        "has_code",
        "hits",
        "inst",
        "language",
        "last",
        "line",
        "n",
        "qmarks",
        "stub",
        "tags",
        "text",
        "window",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        (
            self.window,
            line,
            tags,
            self.hits,
            classes,
            first,
            last,
            inst,
            self.code_named,
            self.stub,
            self.has_code,
            self.formula,
            self.qmarks,
            self.constraints,
            self._digits,
            self._listed,
            self._numbered,
            self._given,
            self._window_steps,
            self.language,
        ) = _scan(text)
        self.line = line
        self.classes = classes
        # Chinese and Japanese have no spaces to split on: their words are looked for as
        # substrings. (No `_CJK_WORDS` tag is a constraint, a step, an option or a code
        # mark: only the zones, the instruction and given material can change.)
        if ("Z" in classes or "J" in classes) and not line.isascii():
            extra = "".join([tag for word, tag in _CJK_WORDS if word in line])
            if extra:
                tags += extra
                first, last = _zones(tags)
                inst = tags if len(tags) <= 60 else first + last
                self.code_named = "P" in inst or "F" in inst or "f" in inst
                self._given = -1
        self.tags, self.first, self.last, self.inst = tags, first, last, inst
        self._numbers = -1

    @property
    def given(self) -> bool:
        """The instruction points at given material or labels it."""
        if self._given < 0:
            self._given = _given(self.tags, self.line)
        return bool(self._given)

    @property
    def numbers(self) -> int:
        """Numbers in the window: digit runs and number words."""
        if self._numbers < 0:
            digits = self._digits
            if digits < 0:
                digits = _digit_runs(self.window.encode(_UTF8, _LONE)) if "0" in self.classes else 0
            self._numbers = self.tags.count("N") + digits
        return self._numbers

    @property
    def listed(self) -> int:
        """Bulleted lines of the window."""
        if self._listed < 0:
            self._listed, self._numbered = _window_items(self.window.encode(_UTF8, _LONE))
        return self._listed

    def steps(self) -> int:
        """Steps of the window (numbered and bulleted lines, step words, questions)."""
        if self._window_steps < 0:
            self._window_steps = _count_steps(self.tags, self.qmarks, self.listed, self._numbered)
        return self._window_steps


def _has_marks(window: str, needed: int) -> bool:
    """At least `needed` of the code marks occur in the window."""
    for mark in _CODE_MARKS:
        if mark in window:
            needed -= 1
            if not needed:
                return True
    return False


def _first_line(text: str) -> str:
    """The first line (at most LINE characters), with the next one after a title."""
    end = text.find("\n", 0, LINE)
    if end < 0:
        return text[:LINE]
    if end < 20:  # "FINAL EXAM", "## Objective:", "Question:": the next line too
        start = end + 1
        while text.startswith("\n", start):
            start += 1
        end = text.find("\n", start, start + LINE)
        return text[: end if end >= 0 else start + LINE]
    return text[:end]


def _last_line(text: str) -> str:
    """The last line (at most LINE characters), with the one before after a cue."""
    stop = len(text.rstrip()) if text[-1:].isspace() else len(text)
    start = text.rfind("\n", stop - LINE, stop)
    if start < 0:
        return text[max(0, stop - LINE) : stop]
    if stop - start < 20:  # "Answer:", "Translate to English."
        before = text.rfind("\n", stop - LINE, start - 1)
        start = before if before >= 0 else max(0, stop - LINE)
    return text[start + 1 : stop]


def _zones(tags: str) -> tuple[str, str]:
    """The tags of the first and of the last line (their first and last 24 words when a
    line is long): where the instruction is."""
    body = tags.strip("/")
    end = body.find("/")
    if end < 0:
        if len(body) > 40:
            return body[:24], body[-24:]
        return body, body
    first = body[:end]
    if len(first) < 4:  # a title such as "FINAL EXAM": the next line too
        stop = body.find("/", end + 1)
        first = body[: stop if stop > 0 else len(body)].replace("/", "")
    start = body.rfind("/")
    last = body[start + 1 :]
    if len(last) < 4:  # a cue such as "Answer:": the end of the line before too
        before = body[:start].rstrip("/")
        last = before[before.rfind("/") + 1 :][-24:] + last
    return (first if len(first) <= 40 else first[:24]), (last if len(last) <= 40 else last[-24:])


def explain(text: str) -> tuple[str, str, float, str, bool]:
    """kind, the name of the rule that chose it, complexity, language and multi_step of a
    prompt's text (what `TaskClassifier.classify` returns, plus the reason)."""
    if not text or text.isspace():
        return "simple_qa", "empty prompt", 0.0, "und", False
    t = _Text(text)
    kind, rule = _decide(t)
    if t.n > HEAD + TAIL and kind not in LIGHT_KINDS and kind not in FRONTIER_KINDS:
        # Only a mid-tier kind can be pushed over FRONTIER_COMPLEXITY by its steps. A long
        # brief lists its requirements after its first line: the numbered and bulleted
        # lines of the first OUTLINE characters count instead of the window's.
        steps = _count_steps(t.tags, t.qmarks, *_items(text, OUTLINE))
    else:
        steps = t.steps()
    n, constraints = t.n, t.constraints
    length = 1.0 if n >= 8000 else _log2(1 + n / 200) / _LOG_LONG
    load = (
        0.4 * length
        + 0.05 * (constraints if constraints < 6 else 6)
        + 0.05 * (steps if steps < 6 else 6)
    )
    base = BASE_COMPLEXITY[kind]
    complexity = int(1000 * (base + (1 - base) * 0.55 * load) + 0.5) / 1000
    multi_step = steps >= 2 or ("t" in t.tags and "by step" in t.line)
    return kind, rule, complexity, t.language or _language(t), multi_step


def _decide(t: _Text) -> tuple[str, str]:
    """The kind, and the name of the rule that chose it (the first rule that matches)."""
    tags, inst, line, n = t.tags, t.inst, t.line, t.n
    first, last = t.first, t.last
    has = tags.__contains__
    asks = inst.__contains__

    if asks("T") or ((has("!") or has("L")) and any(map(line.__contains__, _SAY))):
        if t.has_code or has("C") or (has("P") and (has("p") or not has("L"))):
            return _code_kind(t, "translate code")
        return "translation", "translate verb"

    if t.formula and not t.has_code and not t.code_named:
        return "math", "formula"

    if t.has_code:
        return _code_kind(t, "code in the prompt")
    if (
        asks("I")
        or (t.code_named and any(map(inst.__contains__, "CpI%ABXW")))
        or ((asks("P") or asks("F")) and (asks("Q") or asks("J")))
    ):
        if asks("M") and not has("P") and not has("C"):
            return "math", "math with a program"
        return _code_kind(t, "code requested")

    if asks("S") or (asks("s") and (t.given or n > 600)):
        return "summarization", "summarise verb"

    if asks("R") or (
        asks("r")
        and (any(map(line.__contains__, _EDITS)) or any(map(line.__contains__, _EDIT_VERBS)))
    ):
        return "rewrite", "rewrite verb"

    if asks("K"):
        return "classification", "category / sentiment"
    if ("k" in first or "k" in last) and (has("V") or t.given):
        return "classification", "judge a given text"

    if ("r" in first and t.given) or (has("r") and "person" in line):
        return "rewrite", "edit a given text"

    if asks("Y") or (
        t.qmarks and any(map(line.__contains__, _INFERENCE)) and ", then " not in line
    ):
        return "reasoning", "puzzle / logic / estimate"
    if has("l") and t.qmarks and n < 400 and " than " in line:
        return "reasoning", "comparisons to chain"
    if has("k") and "does not belong" in line:
        return "reasoning", "odd one out"
    clause = _question_clause(line) if t.qmarks else line.strip()
    # A short question about who found what in mathematics is not math.
    math_ok = not (n < 150 and has("h") and not t.numbers) and not clause.startswith(_WHO)
    if asks("M") and math_ok:
        return "math", "math task"

    if (
        has("O")
        or ((has("w") or has("A")) and any(map(line.__contains__, _ROLES)))
        or line.startswith("as a")
    ):
        if n < 1500:
            return "creative", "role-play"
        # A long, structured brief for a persona is a work order, not a story.
        return ("code_complex" if t.code_named or has("C") else "expert"), "brief for a persona"
    if _CREATIVE.search(first) or _CREATIVE.search(last) or (asks("a") and "describe" in line):
        return "creative", "write a creative form"

    for zone in (first, last):
        if ("W" in zone or "C" in zone or "p" in zone) and ("A" in zone or "B" in zone):
            return _code_kind(t, "code requested")
    if "L" in first and len(first) <= 12 and (" in " in line or " into " in line) and t.given:
        return "translation", "put a given text in another language"

    window = t.window
    options = (
        (has("o") and (t.listed or ":" in line))
        or t.listed >= 2
        or (has("q") and "answers:" in line)
        or ("(" in window and "(a)" in window and "(b)" in window)
    )
    if asks("E"):
        return "extraction", "extract verb"
    if t.given and (n >= 250 or "\n\n" in window) and not (options and n < 600):
        if "explain" in line or "explanation" in line:
            return "reasoning", "reason about a given passage"
        return "extraction", "question about a given passage"
    if has("K"):
        return "classification", "categories"
    if n >= 300 and "which one" in line and line.count(", ") >= 5:
        return "classification", "pick one label from a list"
    if n >= 300 and has("q") and "question" in line and t.classes.count("u") >= 2:
        return "extraction", "answer from a quoted passage"

    if options and n < 800:
        if has("M") or tags.count("U") + tags.count("m") >= 2:
            return "math", "word problem with options"
        return "simple_qa", "question with options"
    if n < 500 and has("q") and not has("M") and any(map(line.__contains__, _ASK_ANSWER)):
        return "simple_qa", "answer a question"

    how = has("Q") and "how " in line
    if t.numbers >= 2 and math_ok:
        if has("M") or has("m") or has("U") or "%" in t.classes or "d" in t.classes:
            return "math", "numbers and a quantity"
        if n < 300 and any(map(line.__contains__, _OPERATORS)):
            return "math", "arithmetic"
        if how and any(map(line.__contains__, _QUANTITY)):
            return "math", "numbers and a quantity question"
    if has("M") and math_ok:
        return "math", "math words"
    if n < 200 and ("(" in line or "=" in line) and line.lstrip().startswith(_MATH_VERBS):
        return "math", "solve an expression"

    if has("Q") and "what if" in line and any(map(line.__contains__, _COUNTERFACTUAL)):
        return "reasoning", "counterfactual"
    if has("t") and ("step by step" in line or "step-by-step" in line):
        return "reasoning", "step by step"

    if ((has("y") or t.qmarks) and has("b") and n < 200) or (has("y") and n < 30):
        return "simple_qa", "about the user's own account"
    if how and "how many" in line and t.numbers < 2 and n < 500 and line.count(". ") >= 2:
        return "reasoning", "how many, with nothing to compute from"

    explain_ask = has("J")
    if t.qmarks or explain_ask or has("Q"):
        if not explain_ask and t.qmarks <= 1 and n < 400 and not clause.startswith(_OPEN_STARTS):
            names = _named_entities(t.text)
            if clause.startswith(_FACT_STARTS) or names >= 2 or (names and n < 120):
                return "simple_qa", "factual question"
        deep = (
            (has("Z") and not has("e"))
            or t.qmarks >= 2
            or "justify" in line
            or (explain_ask and (t.numbers >= 1 or t.steps() >= 1 or "includ" in line))
            or tags.count("J") >= 2
            or n > 200
        )
        if deep:
            return "expert", "deep explanatory question"
        return "open_qa", "open question"

    if has("A"):
        return "creative", "writing request"
    if t.formula or (t.numbers >= 2 and n < 400 and (has("m") or has("U") or "=" in t.window)):
        return "math", "numbers"
    if n > 600:
        return "expert", "long unrecognised prompt"
    if has("y") or "please" in line:
        return "simple_qa", "request about the user's own affairs"
    return "open_qa", "unrecognised"


def _code_kind(t: _Text, why: str) -> tuple[str, str]:
    """`code` for self-contained exercises and help on a short snippet, else `code_complex`."""
    has = t.tags.__contains__
    hard = has("X") or has("F") or has("f")
    if t.stub and not hard and t.n < 1600:
        return "code", f"{why}: function stub to complete"
    line = t.line
    if t.has_code:
        helping = any(map(line.__contains__, _CODE_HELP))
        if helping and not hard and t.n < 1500:
            return "code", f"{why}: help with a snippet"
        if ("spot" in line or "wrong" in line) and t.n < 600 and not hard:
            return "code", f"{why}: look at a short snippet"
        return "code_complex", f"{why}: work on given code"
    if has("e") and not hard and not has("M") and t.n < 200 and t.constraints <= 1:
        return "code", f"{why}: textbook exercise"
    return "code_complex", f"{why}: program with requirements"


def _question_clause(line: str) -> str:
    """The sentence that holds the last question mark, lower case."""
    end = line.rfind("?")
    if end < 0:
        return line.strip()
    start = max(line.rfind(". ", 0, end), line.rfind("\n", 0, end), line.rfind(": ", 0, end))
    return line[start + 1 : end].strip()


def _named_entities(text: str) -> int:
    """Capitalised words that do not start a sentence (names, titles, places)."""
    shape = text[:400].encode(_UTF8, _LONE).translate(_SHAPES)
    return (
        shape.count(b" Aa")
        + shape.count(b" AA")
        - shape.count(b". Aa")
        - shape.count(b". AA")
        - shape.count(b" AA ")  # "I", acronyms of two letters
    )


def _language(t: _Text) -> str:
    """ISO 639-1 code of the language with most evidence, or "und"."""
    hits = t.hits
    # `isascii` is a flag of the str (no scan); an ASCII window has no script letters.
    scripts = b"" if t.window.isascii() else t.classes.encode().translate(None, _NOT_SCRIPT)
    if not scripts:  # the common case: function words only
        # The code counted most, the first in the set's order on a tie: what `max` over
        # the scores below gives.
        return _LANG_BY_CODE[max(set(hits), key=hits.count)] if hits else "und"
    scores: dict[str, float] = {}
    for code in set(hits):
        scores[_LANG_BY_CODE[code]] = 2.0 * hits.count(code)
    raw = t.window.encode(_UTF8, _LONE)
    if _V in scripts:  # Vietnamese letters (Latin Extended Additional)
        found = sum(map(raw.count, _VIETNAMESE))
        if found:
            scores["vi"] = scores.get("vi", 0.0) + 2.0 * found
    if _L in scripts or _V in scripts:  # Latin letters with diacritics
        best = [*sorted(scores.values(), reverse=True), 0.0, 0.0]
        if best[0] < 6 or best[0] < 2 * best[1]:  # function words do not settle it
            letters: dict[str, int] = {}
            # The letters are outside ASCII: they are looked for among the window's other
            # letters only, a few bytes instead of hundreds of characters for the regex.
            wide = raw.translate(None, _ASCII).decode(_UTF8, _LONE)
            for letter in _LANGUAGE_LETTERS.findall(wide):
                lang = _LANGUAGE_OF_LETTER[letter]
                letters[lang] = letters.get(lang, 0) + 1
            if letters:
                for lang, _ in _LETTERS:  # in this order: it breaks ties
                    if lang in letters:
                        scores[lang] = scores.get(lang, 0.0) + 2.0 * letters[lang]
    for letter in set(scripts):
        lang = _SCRIPT_OF.get(letter, "")
        if not lang:
            continue
        count = scripts.count(letter)
        if lang == "ru" and sum([t.window.count(c) for c in _UKRAINIAN if c in t.window]) >= 2:
            lang = "uk"
        elif lang == "ar" and any(map(t.window.__contains__, _PERSIAN)):
            lang = "fa"
        elif lang == "zh" and sum(map(raw.count, _KANA)) * 4 >= count:
            lang = "ja"
        elif lang == "ja":  # kana and CJK punctuation: counted with Han
            continue
        elif lang == "indic":
            for prefixes, indic in _INDIC:
                found = sum(map(raw.count, prefixes))
                if found:
                    scores[indic] = scores.get(indic, 0.0) + 0.25 * found
            continue
        weight = 0.6 if lang in ("zh", "ja", "ko") else 0.25
        scores[lang] = scores.get(lang, 0.0) + weight * count
    return max(scores, key=scores.__getitem__) if scores else "und"
