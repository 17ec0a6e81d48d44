"""Built-in classifier `sensitive`: does the prompt carry personal data or a secret?

A prompt that does is kept on premises by the routing policy. Outputs
(`signals.sensitive.<name>`):

- `found` (bool): at least one kind below was found.
- `kinds` (list of strings): the kinds found, sorted.

The whole prompt is scanned (every message). Kinds and what each matches:

- `email`: `local@domain.tld` with a letter TLD. Not: scp-style remotes
  (`git@github.com:org/repo`), file names (`icon@2x.png`), and placeholder mailboxes
  (`user@`, `you@`, `your.email@`, `noreply@` ...).
- `phone`: 7 to 15 digits in groups. Without context only unmistakable formats count: a
  leading `+` or `00`, an area code in parentheses, North American `780-999-2181` /
  `1-800-...`.
  Other groupings (`9472 7916`, `0494 92 82 32`, `555-1234`) count when the nearest label
  before them is a phone word (phone, call, mobile, fax, contact, "my number is" ...).
  Dates, times, money, decimals, versions and numbers of one or two repeated digits
  (`555-555-5555`) are not phones.
- `payment_card`: 12 to 19 digits (spaces or dashes) that pass the Luhn check and either
  start with an issuer prefix (13+ digits, grouped like a card) or follow a card word. A
  number that fails Luhn is no card, whatever its label; test numbers of one or two
  repeated digits (`4111 1111 1111 1111`) count only after a card word.
- `iban`: country code, check digits, account, with the country's length and a valid
  mod-97 checksum (spaces allowed).
- `national_id`: US SSN `123-45-6789` within the SSA's area / group / serial rules (bare
  or spaced only after an SSN label); Polish PESEL (11 digits after a PESEL label, or
  unlabelled with a valid checksum and birth date) and NIP (10 digits after a NIP label,
  or in NIP's dashed layout with a valid checksum); driving licence, passport, national
  insurance, tax and identity card numbers after such a label (`D1234567` too).
- `ip_address`: a public IPv4 or IPv6 address. Private, loopback, link-local, multicast,
  documentation and reserved ranges are infrastructure, not a person's address (a
  private one counts after "my IP is"); a dotted quad after "version" / "build", with a
  fifth part, or of fewer than five digits (`1.2.3.4`, `8.8.8.8`) is taken for a version.
- `postal_address`: a building number followed within a few words by a street type
  (Street, Ave, Road, Strasse, katu, vej, tér ... in several languages) or a street
  prefix and a name (`5678 Via Tranquila`, `5, rue de Rivoli`); a building number, a
  capitalised name and a
  house number (`5366 Pivovarská 276`); a name and a house number after a street prefix
  (`ul. Miła 53`, `Rua do Arenque 1634`), with a street type (`Király u. 15`) or after an
  address phrase (`lives on`, `corner of`); `Apt. 12` / `Suite 245`; PO and military
  boxes (`PSC 1234, Box 5678`, `APO AE 12345`); US `City, ST 12345`; an `Address:` field
  with a number on its line. Ambiguous street types (Court, Place, Way, Drive ...) need a
  capitalised name ("5 minutes walk" is no address); `St.` before a name is Saint.
- `health`: a patient label with a real name or id (`Patient: Anna Smith`, `Patient
  ID: 4567`); a medical record field (`Diagnosis:`, `Medication:`, `Allergies:`, `Test
  Results:`, `Blood Pressure:` ...) with a value, in a text that names its person
  (patient, `Name:`, birth date, a title, "for Anna Smith"); a first-person diagnosis or
  prescription ("I was diagnosed with", "my doctor prescribed"). General medical
  questions ("what is diabetes?") and redacted records (`Patient: [NAME_1]`) are not.
- `account_number`: five or more digits, letters allowed in front (`POL123456789`,
  `CLM-2023-88817`), after an account, policy, claim, member, customer, student,
  employee, routing or medical record label. Order, invoice, ticket and reference
  numbers are not accounts.
- `person_name`: the full names of the speakers of a timestamped chat transcript (two
  lines such as `[10:05 AM] Alice Brown (Designer):`). A name elsewhere is not detected:
  a bare name is not sensitive on its own.
- `secret`: provider key formats (OpenAI `sk-` / `sk-proj-`, Anthropic `sk-ant-`, AWS
  `AKIA...`, GitHub `ghp_` / `github_pat_`, GitLab `glpat-`, Slack `xox?-` / `xapp-` and
  webhooks, Stripe `sk_live_` / `rk_` / `whsec_`, Google `AIza` / `ya29.` / `GOCSPX-`,
  SendGrid, Shopify, npm, PyPI, Hugging Face, DigitalOcean, Atlassian, Twilio, Dynatrace
  ...); `prefix_` or `prefix-` followed by a random body of 16+ characters (how most
  providers shape keys); `eyJ` base64 JSON (JWTs, Grafana keys); the body of a PEM
  private key; a bare random token of 24+ characters mixing upper case, lower case and
  digits; passwords in URLs (`scheme://user:pass@host`) and `curl -u user:pass`;
  `Authorization: Basic|Bearer ...`; SQL `IDENTIFIED BY '...'`; `-passphrase X`,
  `--password=X`; values of credential-named keys (`password = ...`, `"api_key": ...`,
  `token=...`, `SecretAccessKey: ...`) and "my password is X". Values must look real:
  placeholders (`<YOUR_KEY>`, `${ENV}`, `{{ secret }}`, `xxxx`, `****`, `changeme`,
  `your_api_key`, anything with `example` or `...`), expressions (`os.environ[...]`,
  `get_password()`), type names (`password: str`), short values, hex digests, UUIDs,
  lower-case ids, public id prefixes (`chatcmpl-`, `pi_`), base64 images and `sk-` in
  prose are not secrets.

Known blind spots:

- Person names outside chat transcripts, dates of birth, usernames and ages.
- Addresses without a house number ("Strada Georgescu"), a bare "Name 12" with no street
  word, prefix or address phrase around it ("Mládkova 366"), Chinese and Korean
  addresses, city + postcode alone, postcodes outside the US forms above. Famous public
  addresses ("10 Downing Street") are reported like private ones.
- Phone numbers in unusual groupings with no phone word nearby; ids of other countries
  unless labelled (and UK NINO's letter prefix).
- Health data in free prose without a record field, a patient label or a first-person
  statement ("Patient John Smith was admitted ..." without a colon).
- Secrets shorter than 8 characters outside a key assignment; random tokens of only hex,
  only lower case or only upper case without a prefix or a key name; keys inside base64
  blobs; a value whose key name sits in another attribute (`key="ApiKey" value="..."`);
  `--token X` with a short value. Real-looking fake keys in examples are reported.
- Non-ASCII digits; e-mail addresses with non-ASCII local parts.

How it stays cheap (it runs on every request): the text's UTF-8 (`Prompt.utf8`, encoded
once for all classifiers) is read through views of the same length: capitals as `A` and
digits as `0` (the case view), lower case with digits as `0`. Patterns run over a view;
some over a reversed view, so that what precedes a number or an operator (a name, a key)
is read after it. Word lists are compiled as tries. Python looks only at the few
candidates (checksums, placeholders, context words).

Most of a text's digits, colons and `=` start nothing, yet a pass of `re` stops at each of
them and tries its pattern there (one to two microseconds a colon). The C extension
`_sensitive` (`_python_scan` is its twin, equal item for item) builds both views in one
loop, eight bytes at a time, jumps from digit to digit and operator to operator with
`memchr`, and decides with plain loops whether each pass's pattern matches there: the
digits pass (with the branch and the end of each match), names before a house number, the
colon and `=` passes. It also finds the runs of 20 token characters (testing every 20th
byte first, as a run that long covers one) and the first `pass`, `identified`, `diagnos`,
`prescri` and `://`. Python then runs the colon and `=` patterns only where they match,
and reads the numbers and names straight from the lists. Without the extension each of
these is computed the old way, by `re` and `bytes.find`, when first needed.

Other savings: a text without a digit skips the number, address and token passes; a
secret found by a key assignment or a password skips the token pass; a text without `]`
has no chat speakers to look for after its colons; a long token that code repeats is
judged once. A byte is looked for as an integer (`0x3A in b`, a `memchr`) and a longer
string with `find`: `bytes in bytes` first tries its operand as an integer and discards
the error, about 0.3 µs a test. One `re` pass per literal is the cheap way: an alternation
of several literals has no fast skip, and `re` stops at every character that can start one
of them (joining the `=` and `:` passes into one pattern doubles their cost).

Per candidate: the classes of a long token or a key's value (upper case, lower case,
digits, runs of one class) are counted in C by `_sensitive.classes` (its twin
`_python_classes`), a tenth of the cost of the `bytes` methods; a long token without a
digit is only matched against the provider formats, as every other test of a token wants
digits; the street prefixes after a building number are a trie, and a word is tested for
a compound street type (`...strasse`, `...katu`) with one `endswith` before the pattern.
The words before a name and a house number (a street prefix, "address", "lives at" ...)
are read by `_sensitive.street_context` (twin `_python_street_context`) where they are
ASCII, without the list of words and the sets made of it (5 of the 9 µs such a name took).
A run of digits is judged by `_sensitive.number` (twin `_python_number`): its shape, the
checksums and the label before it, `_LABEL_REVERSED` read with plain loops over the same
word lists; about 0.5 µs a run with the call, against 9 µs (3 of them the label's pattern)
over the dev set's runs. Only a dotted quad goes back to Python (`_ipv4`). What follows a
building number (a street type within three words, a name and a house number, a street
prefix) is read by `_sensitive.building_number` (twin `_python_building_number`): the
same patterns in plain loops, each of which can match in one way only (in two where a
second number follows the first), the words of the lists looked up by their length where
the pattern says they end; about 0.35 µs a candidate with the call (0.55 through
`_building_number`), against 5 µs in Python, where up to five patterns are tried in turn,
over the dev set's candidates.
A pass whose candidates the C scan found to be none (no digits run, no name, no operator
match, no `pass` or `diagnos` ...) is not called at all.

What it costs (`bench/classifiers.py`, one core, Python 3.11; old and new code timed in
turns in one process on the same prompts): about 35-40 µs median on a 2 KB prompt and
about 250 µs on 20 KB, against 100-105 and 585-590 µs for the same code without the C
extension. In instructions (`valgrind --tool=callgrind`, mean over the benchmark's prompts):
180 thousand a 2 KB prompt, 2.5 times fewer than before the C scan, and 1.1 million a
20 KB one (2.3 times fewer). About 10 µs of the 2 KB figure is the C scan (views 2 µs,
numbers and names 2.5, operators 2, token runs 2.5, words 1.5); about 7 µs is the rest of
the fixed cost (a 2 KB text without candidates takes 7 µs in all). The rest goes to the
candidates: labels, shapes and checksums of numbers, street words, key values and long
tokens, a few microseconds each. The pure-Python path costs about 3% more instructions
than before the C scan was written (the numbers and names are gathered in lists first).
The per-candidate work above in C, and the passes not called, took `detect` from 46 to
39 µs median on the 2 KB prompts (0.85 times) and from 333 to 321 µs on 20 KB (both
versions timed in turns in one process, median of 9 runs of 10 rounds, `taskset -c 1`);
in `bench/classifiers.py` (which runs each classifier between the others, on colder
caches), from 56 to 49 µs on 2 KB. In instructions (callgrind, `detect` alone after a
warm-up round): from 134 to 119 thousand a 2 KB prompt and from 1.08 to 1.04 million a
20 KB one. The runs of digits judged in C took `detect` from 51 to 47 µs median on the
2 KB prompts and from 419 to 323 µs on 20 KB (in turns in one process, as above); in
`bench/classifiers.py`, from 48 to 41 µs on 2 KB and from 332 to 274 µs on 20 KB. The
building numbers read in C took `sensitive` in `bench/classifiers.py` from 41.5 to 35 µs
median on 2 KB and from 272 to 251 µs on 20 KB (all the classifiers: from 98 to 92 and
from 362 to 342 µs; the median of five runs of each version, in turns); `detect` alone,
in turns in one process, from 35-41 to 32-34 µs on 2 KB and from 292 to 261-268 µs on
20 KB.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .. import native
from ..classifier import Prompt
from ..hookspecs import hookimpl

# ---------------------------------------------------------------------------------------
# Views of the text. All have the length and offsets of its UTF-8 encoding.


def _table(fn: Callable[[int], int]) -> bytes:
    return bytes(fn(i) for i in range(256))


def _spelt(words: str, *, reverse: bool = False) -> tuple[bytes, ...]:
    """The space-separated `words` (`_` stands for a space inside one) as `_words` matches
    them: in UTF-8, spelt backwards (character by character) if `reverse`."""
    return tuple(
        (w.replace("_", " ")[::-1] if reverse else w.replace("_", " ")).encode()
        for w in words.split()
    )


def _words(words: str, *, reverse: bool = False) -> bytes:
    """An alternation of the space-separated `words` (`_` stands for a space inside one),
    spelt backwards if `reverse`, as a trie: `re` tries the branches of an alternation one
    by one, so with shared prefixes a miss costs one comparison, not one per word."""
    root: dict[int, Any] = {}
    for word in _spelt(words, reverse=reverse):
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[-1] = {}  # a word ends here

    def build(node: dict[int, Any]) -> bytes:
        branches = [re.escape(bytes([ch])) + build(node[ch]) for ch in sorted(node) if ch >= 0]
        if not branches:
            return b""
        group = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        if -1 in node:
            return (
                group + b"?" if len(branches) == 1 and len(group) == 1 else b"(?:" + group + b")?"
            )
        return group

    return build(root)


def _char_class(i: int) -> int:
    if 65 <= i <= 90:
        return 0x41  # A
    if 97 <= i <= 122:
        return 0x61  # a
    if 48 <= i <= 57:
        return 0x30  # 0
    return i


def _case_shape(i: int) -> int:
    if 65 <= i <= 90:
        return 0x41  # A
    if 48 <= i <= 57:
        return 0x30  # 0
    return i


def _lower_zero(i: int) -> int:
    if 65 <= i <= 90:
        return i + 32
    if 48 <= i <= 57:
        return 0x30
    return i


_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~")
_CLASS = _table(_char_class)
_CASE_SHAPE = _table(_case_shape)
_LOWER_ZERO = _table(_lower_zero)
_TOKEN = _table(lambda i: 0x78 if i in _TOKEN_CHARS else 0x20)


# What `_python_scan` and `_sensitive.scan` find in a text.
_Found = tuple[bytes, bytes, list[int], list[int], list[int], list[int], list[int], tuple[int, ...]]


class _Scan:
    """The views of one text, where its passes match (`_python_scan`), and the kinds found
    so far (kind -> evidence).

    `c`: capitals as `A`, digits as `0`, the rest as is. `z`: lower case, digits as `0`.
    With the C extension all is computed at once; without it, each part when first asked
    for, as a text without digits needs no number passes.
    """

    __slots__ = (
        "_digits",
        "_names",
        "_operators",
        "_runs",
        "_words",
        "b",
        "c",
        "hits",
        "person",
        "speakers",
        "z",
    )

    def __init__(self, text: str, utf8: bytes | None) -> None:
        self.b = b = utf8 if utf8 is not None else text.encode("utf-8", "surrogatepass")
        self._digits: list[int] | None = None
        self._names: list[int] | None = None
        self._operators: tuple[list[int], list[int]] | None = None
        self._runs: list[int] | None = None
        self._words: tuple[int, ...] | None = None
        if _native_scan is not None:
            found = _native_scan(b)
            self.c, self.z, self._digits, self._names = found[:4]
            self._operators, self._runs, self._words = found[4:6], found[6], found[7]
        else:
            self.c = b.translate(_CASE_SHAPE)
            self.z = b.translate(_LOWER_ZERO)
        self.hits: dict[str, str] = {}
        self.person: bool | None = None  # does a medical record name its person?
        self.speakers = 0  # chat lines with a named speaker

    @property
    def digits(self) -> list[int]:
        if self._digits is None:
            self._digits = _python_digits(self.c)
        return self._digits

    @property
    def names(self) -> list[int]:
        if self._names is None:
            self._names = _python_names(self.c)
        return self._names

    @property
    def runs(self) -> list[int]:
        if self._runs is None:
            self._runs = _python_runs(self.b)
        return self._runs

    def first(self, word: int) -> int:
        """The first offset of one of `_WORDS` (by its index), or -1. Each is asked for
        once at most: without the C extension it is not kept."""
        if self._words is not None:
            return self._words[word]
        lower, text = _WORDS[word]
        return (self.z if lower else self.b).find(text)

    def hit(self, kind: str, start: int, end: int) -> None:
        if kind not in self.hits:
            self.hits[kind] = self.b[start:end].decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------
# Values: placeholders and randomness

# Values that stand for "a secret goes here", in lower case: words and marks anywhere in
# the value, then whole values.
_PLACEHOLDER_PARTS = re.compile(
    _words(
        "example sample dummy placeholder redacted changeme change_me replace insert your xxxx"
        " ... *** ### < > {{ ${ %( fake todo tbd"
    )
    + rb"|here\b"
)
_PLACEHOLDER_WHOLE = re.compile(
    rb"""(?x)
    (?: [x*.\#_-]+                                        # xxxx  ****  ....
      | \$[a-z_{(].*                                      # $VAR  ${VAR}  $(cmd)
      | %[sd] | \? | \{[^}]*\} | \[[^\]]*\] | \([^)]*\)
      | (?:my|test|default|demo|sample)[-_]?[a-z_]*\d*    # my_password, test123
      | (?:none|null|nil|undefined|true|false|string|str|text|number|int|integer|bool
          |boolean|required|optional|hidden|password|passwd|pass|pwd|secret|token|key
          |apikey|api_key|env|environ|getenv|foo|bar|baz|qux|admin|root|guest|user
          |username|login|qwerty|letmein|abc|abcd|private|public|empty|blank|value|bearer
          |basic|auth)\d{0,6}
      | \d{1,8}
    )$
    """
)


def _placeholder_value(v: bytes) -> bool:
    if len(set(v)) <= 2:
        return True
    low = v[:80].lower()
    return _PLACEHOLDER_PARTS.search(low) is not None or (
        len(v) <= 40 and _PLACEHOLDER_WHOLE.match(low) is not None
    )


def _python_classes(s: bytes) -> tuple[int, int, int, int]:
    """Upper, lower and digit counts, and the number of runs of one class (1 + changes
    between neighbours): `_classes`, the twin of `_sensitive.classes`. Counted by `bytes`
    methods: the class view, and neighbours compared by XOR-ing the view with itself
    shifted by one byte (a zero byte is an unchanged class)."""
    cls = s.translate(_CLASS)
    n = len(cls)
    if n < 2:
        return cls.count(b"A"), cls.count(b"a"), cls.count(b"0"), n
    same = int.from_bytes(cls[1:], "big") ^ int.from_bytes(cls[:-1], "big")
    changes = n - 1 - same.to_bytes(n - 1, "big").count(0)
    return cls.count(b"A"), cls.count(b"a"), cls.count(b"0"), changes + 1


# Replaced by `_sensitive.classes` where the extension is built (the end of this module).
_classes: Callable[[bytes], tuple[int, int, int, int]] = _python_classes


def _random_body(s: bytes, *, bare: bool = False) -> bool:
    """Does `s` read as machine-made randomness rather than words or an identifier? A
    `bare` token (no provider prefix, no key name) must mix upper case, lower case and
    digits: hex digests, UUIDs and lower-case ids look random without being secrets."""
    n = len(s)
    upper, lower, digit, runs = _classes(s)
    if upper and lower and digit:
        return runs >= 0.3 * n and digit >= 2
    if bare:
        return False
    if not s.lower().translate(None, b"0123456789abcdef-"):
        return digit >= 0.2 * n and n - digit >= 0.1 * n  # hex
    if digit and (upper or lower):
        # Base 36 (`lower + digits` or `UPPER + DIGITS`) with the digits spread through.
        return digit >= 0.2 * n and runs >= 0.3 * n
    return False


# ---------------------------------------------------------------------------------------
# E-mail addresses, and passwords in URLs (both found from their `@`)

_EMAIL = re.compile(
    rb"[A-Za-z0-9._%+'-]{1,64}@"
    rb"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    rb"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
    rb"\.([A-Za-z]{2,24})(?![A-Za-z0-9-])"
)
# The local part, read backwards from the `@`.
_LOCAL_PART_REVERSED = re.compile(rb"[A-Za-z0-9._%+'-]{1,64}")
# File names such as icon@2x.png have the shape of an address.
_FILE_TLDS = frozenset(
    b"png jpg jpeg gif svg webp ico bmp tif tiff js mjs ts tsx jsx css scss java txt json"
    b" html htm xml yml yaml toml lock tar gz tgz exe dll whl pdf".split()
)
# Mailboxes that stand for "an address goes here" in docs and code.
_PLACEHOLDER_MAILBOXES = frozenset(
    b"user username email mail e-mail name you your yourname youremail your.name"
    b" your.email someone somebody test example foo bar baz me sample dummy noreply"
    b" no-reply donotreply do-not-reply".split()
)
_URL_CREDENTIALS = re.compile(
    rb"[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s:/@'\"<>]{0,64}):([^\s@/'\"<>]{3,128})$"
)


def _emails(scan: _Scan) -> None:
    b, hits = scan.b, scan.hits
    urls = scan.first(_URL) >= 0  # ://
    at = b.find(b"@")
    while at >= 0:
        if urls and "secret" not in hits:
            _url_credentials(scan, at)
        if "email" in hits:
            if not urls or "secret" in hits:
                return
            at = b.find(b"@", at + 1)
            continue
        part = _LOCAL_PART_REVERSED.match(b[max(0, at - 64) : at][::-1])
        m = _EMAIL.match(b, at - part.end(), at + 256) if part is not None else None
        if m is not None and m.end() > at:
            local = b[m.start() : at].lower()
            tld = m.group(1).lower()
            nxt = b[m.end() : m.end() + 2]
            scp = nxt[:1] == b":" and nxt[1:2] not in (b"", b" ", b"\n", b"\t")
            if tld not in _FILE_TLDS and local not in _PLACEHOLDER_MAILBOXES and not scp:
                scan.hit("email", m.start(), m.end())
        at = b.find(b"@", at + 1)


def _url_credentials(scan: _Scan, at: int) -> None:
    """`scheme://user:password@host`, from its `@`."""
    b = scan.b
    lo = max(0, at - 220)
    head = b[lo:at]
    i = head.rfind(b"://")
    if i < 0:
        return
    m = _URL_CREDENTIALS.search(head, max(0, i - 21))
    if m is None:
        return
    user, password = m.group(1), m.group(2)
    if password.lower() != user.lower() and not _placeholder_value(password):
        scan.hit("secret", lo + m.start(), at)


# ---------------------------------------------------------------------------------------
# Numbers: phones, cards, IBANs, national ids, accounts, IPv4, US ZIP codes, buildings

# Street prefixes that follow a building number in lower case: "5, rue de Rivoli".
_LOWER_PREFIX_WORDS = (
    "rue|avenue|boulevard|bd|chemin|allée|impasse|quai|calle|avenida|rua|strada|ulica|calea"
    "|piazza|travessa|estrada|rodovia|alameda"
)
_LOWER_PREFIXES = frozenset(_LOWER_PREFIX_WORDS.encode().split(b"|"))
# The one pass over the digits of the case view. A number is worth a look when it is
# the check digits of an IBAN (two capitals before, ten or more letters and digits after);
# a run of at least five digits with single separators (`555-123-4567`, `4454 7945 1139
# 0933`, `10.20.1.5`, `(555) 123-4567` from the area code on); or a building number
# followed by a capitalised or non-ASCII word, a lower-case street prefix (`5, rue ...`),
# or a word and a plain street type (`123 main street`). Numbers glued to a lower-case
# word, a decimal point, a thousands comma, a currency sign or a colon are parts of
# something else (hashes, decimals, money, times) and never start one. Possessive
# quantifiers keep a failed try from backtracking. Optional parts are spelt as
# alternations (`0|[ -./]0`, not `[ -./]?0`): the same matches, but `re` skips a branch
# that starts with a character it cannot match without entering it (7% off this pass).
# For the same reason the IBAN branch reads its second check digit before its lookbehind
# and group, the two building branches share their possessive `0{0,4}+`, and the street
# prefixes are a trie (10% off this pass together).
_BUILDING_WORD = rb",? (?:A|[\x80-\xff]|" + _words(_LOWER_PREFIX_WORDS.replace("|", " ")) + rb" )"
_PLAIN_STREETS = "street avenue road boulevard lane drive terrace parkway"
_DIGITS_SOURCE = (
    rb"0(?<![a-z0_.,$:]0)(?:0(?<=[^A-Za-z0]AA00)(?P<iban>(?: ?[A0]){10,32}+)"
    rb"|(?P<run>(?:0|[ \-./]0|\) ?0){4,}+)"
    rb"|0{0,4}+(?:A?(?:[ /-]0{1,5}+A?" + _BUILDING_WORD + rb"|" + _BUILDING_WORD + rb")"
    rb"| [a-z]{2,20}+ (?:" + _PLAIN_STREETS.replace(" ", "|").encode() + rb")\b))"
)


def _numbers(scan: _Scan) -> None:
    c, hits, found = scan.c, scan.hits, scan.digits
    for k in range(0, len(found), 3):
        start, end, kind = found[k], found[k + 1], found[k + 2]
        if kind == _IBAN:
            if "iban" not in hits:
                _iban(scan, start - 2, end)
            continue
        if kind == _RUN:
            _number(scan, start, end)
            if c[end : end + 1] != b" " or c[end + 1 : end + 2] in (b"", b" ", b"\n"):
                continue
        if "postal_address" not in hits:
            _building_number(scan, start)


def _number(scan: _Scan, start: int, end: int) -> None:
    """Classify one run of five or more digits: in C where the extension is built
    (`_sensitive.number` returns what `_python_number` would report), else in Python."""
    if _native_number is None:
        _python_number(scan, start, end)
        return
    found = _native_number(scan.b, scan.c, scan.z, start, end)
    if found is not None:
        kind, hit_start, hit_end = found
        if kind == "ipv4":
            # `_ipv4` reads the kinds found so far and two patterns: it stays in Python.
            _ipv4(scan, hit_start, hit_end, scan.b[hit_start:hit_end])
        else:
            scan.hit(kind, hit_start, hit_end)


def _python_number(scan: _Scan, start: int, end: int) -> None:
    """`_number` without the C extension, and the twin of `_sensitive.number`, which does
    all of this but `_ipv4` in plain loops."""
    b, c = scan.b, scan.c
    if c[start - 1 : start] == b"A" or c[max(0, start - 2) : start] == b"A-":
        # Letters in front (`POL123456789`, `D1234567`, `CLM-2023-88817`): an id, never a
        # phone or a card; only a label says what it is.
        if not c[end : end + 1].islower():
            _labelled_id(scan, start, end)
        return
    shape = _shape(c[start:end])
    n, sizes, seps = shape.digits, shape.sizes, shape.seps
    raw = b[start:end]
    if len(set(raw.translate(None, _SEPARATOR_BYTES))) <= 2:
        # 555-555-5555, 4242 4242 4242 4242: examples and test numbers, never a phone or an
        # id. A card all the same where the text calls it one ("my card 4111 1111 1111
        # 1111"): at the data boundary a miss costs more than a false alarm.
        digits = raw.translate(None, _SEPARATOR_BYTES)
        if 12 <= n <= 19 and _luhn(digits) and _label(scan, start) == "card":
            scan.hit("payment_card", start, end)
        return
    if seps == b".":
        # `_ipv4` reads dotted groups only: `10.1.2)01` (no address) would make it fail.
        if len(sizes) == 4 and max(sizes) <= 3 and 0x29 not in raw:  # )
            _ipv4(scan, start, end, raw)
            return
        if sizes != (3, 3, 4):
            return  # decimals, versions, dotted dates
    elif 0x2E in seps:  # .
        return  # decimals among other separators: amounts, coordinates
    if shape.date_like and _is_date(raw.translate(_SEPARATORS_TO_SPACE).split(), sizes):
        return

    # An SSN with dashes counts without a label; a spaced or bare one needs it.
    if sizes == (3, 2, 4) and seps == b"-" and _ssn(int(raw[:3]), int(raw[4:6]), int(raw[7:])):
        scan.hit("national_id", start, end)
        return
    strong_phone = _strong_phone(b, start, shape)
    card = False
    if 12 <= n <= 19 and shape.card_like:
        digits = raw.translate(None, _SEPARATOR_BYTES)
        card = _luhn(digits)
        if card and n >= 13 and _card_prefix(digits) and not strong_phone:
            scan.hit("payment_card", start, end)
            return
    if strong_phone:
        scan.hit("phone", start, end)
        return

    label = _label(scan, start)
    if label == "nid" or label == "dl":
        scan.hit("national_id", start, end)
        return
    if label == "card":
        if card:  # a card label cannot make a number that fails Luhn a card
            scan.hit("payment_card", start, end)
        return
    if n == 11 and len(sizes) == 1 and _pesel(raw):
        scan.hit("national_id", start, end)
        return
    nip_layout = n == 10 and sizes in ((3, 3, 2, 2), (3, 2, 2, 3)) and seps == b"-"
    if nip_layout and _nip(raw.translate(None, b"-")):
        scan.hit("national_id", start, end)
        return
    if label == "acct":
        scan.hit("account_number", start, end)
        return
    if n == 5 or sizes == (5, 4):
        head = b[max(0, start - 16) : start]
        state = head[-4:-1].strip(b" ").upper()
        if (head[-5:-4] == b"," and head[-1:] == b" " and state in _US_STATES) or (
            _MILITARY_BOX.search(head)
        ):
            scan.hit("postal_address", start, end)
            return
    if label == "phone" and 7 <= n <= 15 and len(sizes) <= 6:
        scan.hit("phone", start, end)


class _Shape:
    """The digit groups and separators of a run (`000-00-0000`), whatever its digits."""

    __slots__ = ("card_like", "date_like", "digits", "seps", "sizes")

    def __init__(self, shape: bytes) -> None:
        sizes = tuple(len(g) for g in shape.translate(_SEPARATORS_TO_SPACE).split())
        self.sizes = sizes
        self.digits = sum(sizes)
        # The kinds of separator, `) ` counted as a space.
        seps = bytes(sorted(set(shape.translate(None, b"0)("))))
        self.seps = seps if seps or 0x29 not in shape else b" "  # )
        self.date_like = len(sizes) == 3 and len(self.seps) == 1 and self.seps in b"-/."
        self.card_like = self.seps in (b"", b" ", b"-") and (
            len(sizes) == 1 or all(s == 4 for s in sizes[:-1]) or sizes in ((4, 6, 5), (4, 6, 4))
        )


# Shapes repeat (phone and card layouts), so each is worked out once. Bounded: a text full
# of odd groupings cannot grow it forever.
_SHAPES: dict[bytes, _Shape] = {}
_SEPARATOR_BYTES = b" -./()"
_SEPARATORS_TO_SPACE = _table(lambda i: 0x20 if i in _SEPARATOR_BYTES else i)


def _shape(key: bytes) -> _Shape:
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        shape = _SHAPES[key] = _Shape(key)
    return shape


def _labelled_id(scan: _Scan, start: int, end: int) -> None:
    s = start - 1 if scan.c[start - 1] == 0x2D else start
    while s > 0 and scan.c[s - 1] == 0x41 and start - s < 7:
        s -= 1
    if s > 0 and (scan.c[s - 1 : s].islower() or scan.c[s - 1] in b"0_"):
        return
    label = _label(scan, s)
    if label in ("nid", "dl"):
        scan.hit("national_id", s, end)
    elif label == "acct":
        scan.hit("account_number", s, end)


def _is_date(groups: list[bytes], sizes: tuple[int, ...]) -> bool:
    if sizes[0] == 4 and sizes[1] <= 2 and sizes[2] <= 2:
        year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
    elif sizes[2] == 4 and sizes[0] <= 2 and sizes[1] <= 2:
        year, month, day = int(groups[2]), int(groups[0]), int(groups[1])
        if month > 12:
            month, day = day, month
    else:
        return False
    return 1800 <= year <= 2199 and 1 <= month <= 12 and 1 <= day <= 31


def _strong_phone(b: bytes, start: int, shape: _Shape) -> bool:
    """Formats that are phone numbers whatever the words around them say."""
    n = shape.digits
    if n < 7 or n > 15:
        return False
    if b[start - 1 : start] == b"+" or b[max(0, start - 2) : start] == b"+ ":
        return n >= 8
    if b[start - 1 : start] == b"(" and 0x29 in b[start : start + 6]:  # )
        return True
    if b[start : start + 2] == b"00" and n >= 10 and shape.seps:
        return True  # the international call prefix: 001-541-754-3010
    if shape.seps in (b"-", b"."):
        return shape.sizes in ((3, 3, 4), (1, 3, 3, 4))
    return False


# What the words before a number say it is: read backwards from the number with one match
# on the reversed lower-case window, past fillers ("is", "my", ":"), an optional "number"
# / "no" / "id", to the label. Two-word labels are written with `_`.
_LABELS = {
    "nid": "ssn ssns pesel nip passport nino itin tin sin social_security national_insurance"
    " national_id tax_id personal_id identity_card id_card",
    "dl": "licence license licences licenses dl",
    "acct": "account accounts acct a/c policy claim member membership customer subscriber"
    " subscription routing loan contract student employee mrn iban sort_code medical_record"
    " patient_id",
    "card": "card cards cc visa mastercard amex credit debit",
    "other": "order invoice ticket reference ref case tracking confirmation transaction booking"
    " reservation serial model part item sku isbn version release build zip postal postcode"
    " page room flight username user_id pin otp verification amount total price cost balance"
    " year years population",
    "phone": "phone phones call tel telephone mobile cell cellphone fax whatsapp sms text reach"
    " dial contact ring landline line hotline helpline extension ext",
}
_FILLERS = (
    "is was are were be it it's its here here's my your his her our their the a an this that"
    " of for on at to me us him them please use with new following below as and or"
)
_LABEL_TAILS = "number num no nr # id code"
_NUMBER_TAILS = (b"rebmun", b"mun", b"on", b"rn", b"#")
_GAP = rb"[^a-z0\x80-\xff]*+"
_FILL = rb"(?:" + _words(_FILLERS, reverse=True) + rb"(?![a-z])" + _GAP + rb")*+"
_LABEL_REVERSED = re.compile(
    _GAP
    + _FILL
    + rb"(?:(?P<tail>"
    + _words(_LABEL_TAILS, reverse=True)
    + rb")(?![a-z])"
    + _GAP
    + _FILL
    + rb")?(?:(?:"
    + rb"|".join(
        b"(?P<" + kind.encode() + b">" + _words(words, reverse=True) + b")"
        for kind, words in _LABELS.items()
    )
    + rb")(?![a-z])|(?P<none>))"
)


def _label(scan: _Scan, start: int) -> str | None:
    """The label among the few words before a number, or None. A bare "number" with no
    other label before it ("my number is ...") is a phone."""
    m = _LABEL_REVERSED.match(scan.z[max(0, start - 48) : start][::-1])
    if m is None:
        return None
    kind = m.lastgroup
    if kind == "none" or kind == "tail":
        return "phone" if m.group("tail") in _NUMBER_TAILS else None
    return kind


# Luhn: every second digit from the right is doubled and its digits summed (7 -> 14 -> 5).
_LUHN_DOUBLE = bytes.maketrans(b"0123456789", b"0246813579")


def _luhn(digits: bytes) -> bool:
    r = digits[::-1]
    return (sum(r[0::2]) + sum(r[1::2].translate(_LUHN_DOUBLE)) - 48 * len(r)) % 10 == 0


def _card_prefix(digits: bytes) -> bool:
    """Issuer prefixes in use (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay,
    Maestro, Mir): a Luhn-valid run that starts elsewhere is a timestamp or an id."""
    if digits[0] in b"3456":
        return True
    head = int(digits[:4])
    return 2221 <= head <= 2720 or 2200 <= head <= 2204 or head in (1800, 2131)


def _pesel(digits: bytes) -> bool:
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    total = sum(w * (d - 48) for w, d in zip(weights, digits, strict=False))
    if (10 - total % 10) % 10 != digits[10] - 48:
        return False
    month = int(digits[2:4]) % 20  # +20, +40 ... encode the century
    day = int(digits[4:6])
    return 1 <= month <= 12 and 1 <= day <= 31


def _nip(digits: bytes) -> bool:
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    total = sum(w * (d - 48) for w, d in zip(weights, digits, strict=False)) % 11
    return total != 10 and total == digits[9] - 48


def _ssn(area: int, group: int, serial: int) -> bool:
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


_VERSION_WORDS = re.compile(
    rb"(?:version|\bver\b|\bv|release|build|firmware|\bos|update|patch)"
    rb"(?:\s+(?:is|was|of|to)\b)*[\s.:=]*$"
)


def _ipv4(scan: _Scan, start: int, end: int, raw: bytes) -> None:
    octets = [int(g) for g in raw.split(b".")]
    if max(octets) > 255 or scan.b[end : end + 1] == b"." or "ip_address" in scan.hits:
        return
    before = scan.z[max(0, start - 24) : start]
    if _public_ipv4(octets):
        if not _VERSION_WORDS.search(before):
            scan.hit("ip_address", start, end)
    elif octets[0] in (10, 172, 192, 100, 169) and _MY_IP.search(before):
        # A private address is infrastructure, unless someone says it is theirs.
        scan.hit("ip_address", start, end)


_MY_IP = re.compile(rb"\bip(?:v4)?(?:\s+address)?(?:\s+(?:is|was))?\s*[:=]?\s*$")


def _public_ipv4(octets: list[int]) -> bool:
    a, b, c = octets[0], octets[1], octets[2]
    if a in (0, 10, 127) or a >= 224:
        return False
    if (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168) or (a == 169 and b == 254):
        return False
    if a == 100 and 64 <= b <= 127:  # carrier-grade NAT
        return False
    return (a, b, c) not in ((192, 0, 2), (198, 51, 100), (203, 0, 113)) and not (
        a == 198 and b in (18, 19)
    )


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _ipv6(scan: _Scan, start: int, last_colon: int) -> None:
    b = scan.b
    end = last_colon + 1
    while end < len(b) and b[end] in _HEX_DIGITS and end - last_colon <= 4:
        end += 1
    try:
        address = ipaddress.IPv6Address(b[start:end].decode())
    except ValueError:
        return
    if address.is_global:
        scan.hit("ip_address", start, end)


_US_STATES = frozenset(
    b"AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH"
    b" NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP AA AE AP"
    b" AB BC MB NB NL NS NT NU ON PE QC SK YT".split()
)
_MILITARY_BOX = re.compile(rb"(?:APO|FPO|DPO) (?:AA|AE|AP) $")

# Length of the IBAN per country (ISO 13616 registry).
_IBAN_REGISTRY = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28"
    " EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26"
    " IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MR27 MT31 MU30"
    " NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SD18 SE24 SI19 SK24 SM27 ST25 SV28"
    " TL23 TN24 TR26 UA29 VA22 VG24 XK20"
)
_IBAN_LENGTHS = {item[:2].encode(): int(item[2:]) for item in _IBAN_REGISTRY.split()}


def _iban(scan: _Scan, start: int, end: int) -> None:
    """A country code at `start`: the country's length and the mod-97 checksum."""
    b = scan.b
    length = _IBAN_LENGTHS.get(b[start : start + 2])
    compact = b[start:end].replace(b" ", b"")
    if length is None or len(compact) < length:
        return
    candidate = compact[:length].decode()
    rotated = candidate[4:] + candidate[:4]
    if int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1:
        scan.hit("iban", start, end)


# ---------------------------------------------------------------------------------------
# Postal addresses

# Street types written after the street name ("Elm Street", "Erzsébet tér").
_SUFFIX_TYPES = (
    "street|streets|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|court|courts|ct"
    "|place|terrace|way|circle|cir|crescent|cres|close|parkway|pkwy|highway|hwy|square|sq"
    "|trail|trl|alley|plaza|mews|grove|gardens|row|walk|hill|heights|ridge|loop|pike|expressway"
    "|freeway|causeway|esplanade|promenade|quay|wharf|strasse|straße|str|gasse|allee"
    "|chaussee|vej|gade|gatan|gata|gate|vägen|väg|veien|vegen|katu|tie|kuja"
    "|utca|út|tér|körút|köz|laan|straat|gracht|plein|kade|terrasse|apt|apartment|suite|ste"
)
# More street types of English-speaking countries (the USPS list and British, Australian
# ones). All are everyday words too, so they need a capitalised name ("743 Elliott Burgs").
_MORE_SUFFIX_TYPES = (
    "alley annex arcade bayou beach bend bluff bluffs bottom branch bridge brook brooks burg"
    " burgs bypass camp canyon cape center centers circles cliff cliffs club common commons"
    " corner corners course cove coves creek crest crossing crossroad curve dale dam divide"
    " drives estate estates extension falls ferry field fields flat flats ford fords forest"
    " forge forges fork forks fort garden gateway glen glens green greens groves harbor"
    " harbors haven hills hollow inlet island islands isle junction junctions key keys knoll"
    " knolls lake lakes land landing lanes light lights loaf lock locks lodge mall manor manors"
    " meadow meadows mill mills mission motorway mount mountain mountains neck orchard oval"
    " overpass park parks parkways pass passage path pine pines plain plains point points port"
    " ports prairie radial ramp ranch rapid rapids rest ridges river roads run shoal shoals"
    " shore shores skyway spring springs spur spurs squares station stravenue stream summit"
    " trace track trafficway trailer tunnel turnpike underpass union unions valley valleys"
    " viaduct views village villages ville vista walks wall ways well wells end rise parade"
    " circuit chase glade drove fold lea nook pathway reach retreat strand vale walkway wynd"
    " wade alleyway approach brace meander grange firetrail quad block anchorage gap amble"
    " distributor ride upper lower outlook concourse crossway deviation entrance lookout"
    " ramble reserve ridgeway serviceway thoroughfare tollway turn woods"
)
# Street types written before the name ("Rua do Arenque", "Via Roma"); abbreviations
# count with their dot only ("ul. Miła", "al. Jana Pawła", "Jl. Rajiman").
_PREFIX_WORDS = (
    "rua|avenida|calle|carrera|camino|paseo|pasaje|via|viale|vicolo|piazza|corso|largo"
    "|strada|rue|boulevard|chemin|impasse|quai|ulica|aleja|osiedle|plac|travessa|estrada"
    "|rodovia|alameda|jalan|calea|avenue|praça|sokak|cadde|улица|проспект|οδός|cuesta|ronda"
    "|rambla|travesía|glorieta|carretera|callejón|cañada|urbanización|bajada|acceso|contrada"
    "|borgo|rotonda|piazzale|incrocio|canale|stretto|lungomare|salita|campo|recanto|vila"
    "|viela|ladeira|quadra|conjunto|residencial|setor|chácara|sítio|loteamento|parque|jardim"
    "|bulevardul|aleea|șoseaua|splaiul|intrarea|námestie|náměstí|trg|bulevar|gang|вулиця"
    "|провулок|площа|бульвар|шосе|переулок|шоссе|λεωφόρος|πλατεία"
)
_PREFIX_ABBREVIATIONS = "av|bd|ul|al|os|pl|jl|gg|cd|u|ул|пр|пер|ш|вул|пл|str|λεωφ"
# Endings of compound street names ("Bundesstrasse", "Kiannonkatu", "Ringvej"): after at
# least one letter, since "Platz 1" alone is a rank.
_COMPOUND_WORDS = (
    "strasse|straße|gasse|weg|allee|platz|ring|damm|vej|gade|gatan|gata|vägen|veien"
    "|vegen|katu|tie|kuja|utca|straat|laan|gracht|steeg|plein|hof|singel|dijk|kade|løkka"
    "|bakken|stien|svingen|vænget|stræde|torv|plads|gränd|stigen|backen|torget|polku|kaari"
    "|rinne|väylä|vollen|marka|skogen|høgda|hagen|berget|åsen|haugen|jordet|tunet|kroken"
    "|ringen|plassen|bråten|dalen"
)
_COMPOUND_TYPES = re.compile(f".(?:{_COMPOUND_WORDS})$".encode())
# The same endings for `bytes.endswith`, one C loop: most words end in none of them, and
# `re` would try the alternation at each of their letters.
_COMPOUND_ENDINGS = tuple(_COMPOUND_WORDS.encode().split(b"|"))
_MORE_SUFFIXES = frozenset(_MORE_SUFFIX_TYPES.encode().split())
# Street types that are also everyday words ("5 minutes walk", "7 PM at my place").
_AMBIGUOUS_TYPES = frozenset(
    b"court courts ct place way row walk hill heights ridge loop ring gate close grove"
    b" gardens square sq trail drive lane ln ave st ste pike str tie".split()
)
# Street prefixes as words of the text: "rua", "ul.", "al.".
_STREET_PREFIXES = frozenset(_PREFIX_WORDS.encode().split(b"|")) | frozenset(
    a + b"." for a in _PREFIX_ABBREVIATIONS.encode().split(b"|")
)
# Street types that say "street" on their own, before a house number ("Király u. 15",
# "Zarnikova ulica 417", "д. 2": the house of a Russian address).
_PLAIN_STREET_WORDS = (
    (
        frozenset(_SUFFIX_TYPES.encode().split(b"|"))
        | frozenset("u ul str ulica cesta trg д дом буд кв корп".encode().split())
    )
    - _AMBIGUOUS_TYPES
    - frozenset(b"apt apartment suite ste".split())
)
# Lower-case words that may stand right before a house number.
_LOWER_STREET_WORDS = "utca ulica cesta trg gasse vej gade katu tie u ul д буд кв"
# Capitalised words that take a number without being a street.
_NOT_STREETS = frozenset(
    b"chapter section figure fig table page step level version grade class part volume vol"
    b" issue item year day week month act scene verse article rule phase stage round game"
    b" season episode windows python java ios android iphone galaxy pixel model series type"
    b" mark no number gen generation unit box psc room floor gate platform terminal route"
    b" flight bus line channel january february march april may june july august september"
    b" october november december jan feb mar apr jun jul aug sep sept oct nov dec monday"
    b" tuesday wednesday thursday friday saturday sunday covid top over under about around"
    b" nearly only all the and or of in at on for to by am pm utc gmt est pst cet".split()
)

# In the case view: an upper-case letter (ASCII, Latin-1, Latin Extended-A, Cyrillic,
# Greek) and the rest of a word.
_UP = rb"(?:A|\xc3[\x80-\x9e]|[\xc4\xc5][\x80-\xbf]|\xd0[\x80-\xaf]|\xce[\x86-\xab])"
_REST = rb"[A-Za-z\x80-\xff]"
_WORD = rb"[^\s,;:()\[\]\"'<>]{1,30}"
# After a building number, in the lower-case view: a street type within three words.
# One pattern per number of words, so that a rejected short reading ("101 Park", park
# being a street type) leaves the longer one ("101 Park Avenue") to be tried.
_STREET_TYPE_WORDS = _SUFFIX_TYPES.replace("|", " ") + " " + _MORE_SUFFIX_TYPES
_STREET_TYPE = _words(_STREET_TYPE_WORDS)
_STREET_AFTER = tuple(
    re.compile(
        rb"0{1,6}[a-z]?(?:[ /-]0{1,5}[a-z]?)?\s+((?:"
        + _WORD
        + rb"\s+){%d})(" % words
        + _STREET_TYPE
        + rb")(\.?)(?=[\s.,;:)]|$)"
    )
    for words in range(4)
)
# Whether any of them matches, in one try: most numbers before a capitalised word have no
# street type after them ("In 1851 Paul Julius Reuter"). A word can only be followed by a
# blank when it is taken whole, so the possessive forms match the same; nested optional
# words are cheaper for `re` than a counted repeat of a group.
_BLANK_WORD = _WORD + rb"+\s++"
_ANY_STREET_AFTER = re.compile(
    rb"0{1,6}[a-z]?(?:[ /-]0{1,5}[a-z]?)?\s++(?:"
    + _BLANK_WORD
    + rb"(?:"
    + _BLANK_WORD
    + rb"(?:"
    + _BLANK_WORD
    + rb")?)?)?"
    + _STREET_TYPE
    + rb"\.?(?=[\s.,;:)]|$)"
)
# ... or, in the case view, a name and a house number ("5366 Pivovarská 276"). A name is
# only followed by a dot or a blank when it is taken whole: possessive, it is not retried
# one letter shorter at each failed try.
_CAPITALISED = _UP + _REST + rb"*+"
_NUMBER_NAME_NUMBER = re.compile(
    rb"0{1,6}A?(?:[ /-]0{1,5}A?)? (" + _CAPITALISED + rb")\.?(?: " + _CAPITALISED + rb"\.?){0,2}"
    rb" 0{1,5}(?![0A-Za-z])"
)
# ... or a street prefix and a name ("5678 Via Tranquila", "12 Rue Cler").
# The prefixes as a trie: a number followed by none (most) fails at one comparison, not
# at one per prefix. A prefix must be followed by a space, so at most one fits: the same
# match as the plain alternation.
_PREFIX_ARTICLES = "de do da del della di la le les du des dos das"
_NUMBER_PREFIX_NAME = re.compile(
    rb"0{1,6}[a-z]?,? (?:"
    + _words(_PREFIX_WORDS.replace("|", " "))
    + rb")(?: (?:"
    + _PREFIX_ARTICLES.replace(" ", "|").encode()
    + rb")(?= ))*+ "
)
# A name then a house number ("Miła 53", "Király u. 15", "Suite 245"), found from the
# number in the reversed case view, where the word before a number comes after it:
# numbers are rarer than capitals, and each is tried once. The word is capitalised (ASCII
# initial), an abbreviation ("u."), or has non-ASCII letters ("heiligengeistbrücke 77").
_NAME_NUMBER_REVERSED_SOURCE = (
    rb"0 ,?(?:\.?[a-z\x80-\xff]*+A++|\.[a-z]{1,3}|\.?[a-z]*+[\x80-\xff][a-z\x80-\xff]*+|"
    + _words(_LOWER_STREET_WORDS, reverse=True)
    + rb")(?![A-Za-z\x80-\xff0])"
)
_BOX_BEFORE = re.compile(rb"(?:(?:psc|unit|cmr)\s?0{1,5},?|\bp\.?\s?o\.?)\s*$")
# Words before a street name that announce an address, and substrings of them (cheap to
# test before splitting words).
_ADDRESS_WORDS = frozenset(b"address addresses addr located residence resides".split())
_SEND_WORDS = frozenset(
    b"send sent ship shipped deliver delivered mail mailed post posted forward return"
    b" returned bring".split()
)
_ADDRESS_PAIRS = frozenset(
    (first.encode(), second.encode())
    for first, seconds in (
        ("lives", "at on in"),
        ("live", "at on in"),
        ("living", "at on in"),
        ("lived", "at on in"),
        ("corner", "of"),
        ("moved", "to into"),
        ("move", "to into"),
        ("deliver", "to"),
        ("delivered", "to"),
        ("ship", "to"),
        ("shipped", "to"),
        ("send", "to"),
        ("sent", "to"),
        ("return", "to"),
        ("meet", "at"),
        ("is", "at"),
        ("it's", "at on in"),
        ("its", "at on in"),
    )
    for second in seconds.split()
)
_PAIR_FIRSTS = frozenset(first for first, _second in _ADDRESS_PAIRS)
# Every word that the checks of the words before a house number look for.
_CONTEXT_WORDS = _STREET_PREFIXES | _ADDRESS_WORDS | _SEND_WORDS | _PAIR_FIRSTS
_HOUSE_NUMBER_WORDS = frozenset((b"no", b"nr", "nº".encode()))


def _building_number(scan: _Scan, start: int) -> None:
    """A building number at `start`: is a street type or name after it? In C where the
    extension is built (`_sensitive.building_number` returns the span that
    `_python_building_number` would report), else in Python."""
    if _native_building_number is None:
        _python_building_number(scan, start)
        return
    found = _native_building_number(scan.b, scan.c, scan.z, start)
    if found is not None:
        scan.hit("postal_address", found[0], found[1])


def _python_building_number(scan: _Scan, start: int) -> None:
    """`_building_number` without the C extension, and the twin of
    `_sensitive.building_number`, which reads the same patterns with plain loops (each
    matches in one way at most, or in two where a second number follows the first:
    `12 345 Main St` has its words after `12 345` or after `12`)."""
    b, c, z = scan.b, scan.c, scan.z
    if _ANY_STREET_AFTER.match(z, start) is not None:
        for pattern in _STREET_AFTER:
            s = pattern.match(z, start)
            if s is not None and _street_after(b, s):
                scan.hit("postal_address", start, s.end())
                return
    t = _NUMBER_NAME_NUMBER.match(c, start)
    if t is not None and z[t.start(1) : t.end(1)] not in _NOT_STREETS:
        house = b[t.end() - 4 : t.end()]
        if not (house[:2] in (b"19", b"20") and house.isdigit()):  # a year: "1912 Sohn 2009"
            scan.hit("postal_address", start, t.end())
            return
    p = _NUMBER_PREFIX_NAME.match(z, start)
    if p is not None:
        # A capitalised name, or after a number in lower case any word ("5, rue de rivoli").
        prefix = z[start : p.end()].split()[1]
        if c[p.end() : p.end() + 1] == b"A" or prefix in _LOWER_PREFIXES:
            scan.hit("postal_address", start, p.end() + 1)


def _street_after(b: bytes, m: re.Match[bytes]) -> bool:
    """Building number, words, street type. Ambiguous types need a capitalised name ("12
    Timms Drive", not "5 minutes walk"); `St.` before a capitalised word is Saint ("1980
    Mount St. Helens")."""
    kind = m.group(2)
    after = b[m.end() : m.end() + 2]
    if kind == b"st" and m.group(3) and after[:1] == b" " and after[1:].isupper():
        return False
    if kind not in _AMBIGUOUS_TYPES and kind not in _MORE_SUFFIXES:
        return True
    number = b[m.start() : m.start(1)].split()[0].rstrip(b",")
    if kind in _MORE_SUFFIXES and len(number) == 4 and number[:2] in (b"19", b"20"):
        return False  # a year: "the 1992 Olympic Village"
    names = b[m.start(1) : m.end(1)].split()
    return bool(names) and all(
        (w[:1].isupper() and not w.isupper()) or w[:1] >= b"\x80" or w[:1].isdigit() for w in names
    )


def _addresses(scan: _Scan) -> None:
    """A name and a house number (building numbers and fields are found elsewhere)."""
    if "postal_address" in scan.hits:
        return
    found = scan.names  # (word start, number end) pairs: see `_python_scan`
    for k in range(0, len(found), 2):
        start, end = found[k], found[k + 1]
        if _name_number(scan, start, end):
            scan.hit("postal_address", start, end)
            return


def _name_number(scan: _Scan, start: int, end: int) -> bool:
    """The word at `start` and the house number after it: a street?"""
    z = scan.z
    # Lower case beyond ASCII too (the view only folds ASCII): "Λεωφόρος", "Ул.".
    word = _fold(z[start:end].split()[0])
    comma = word.endswith(b",")
    word = word.strip(b".,")
    if word in _NOT_STREETS and word not in (b"no", b"nr"):
        return False  # "June 3", "Windows 10", "In 1992"
    if word in (b"apt", b"apartment", b"suite", b"ste", b"flat"):
        # "Apt. 12"; "Suite" needs two digits ("Creative Suite 6" is software).
        return word != b"suite" or end - start >= 8
    if word == b"box":
        # "PSC 1234, Box 5678", "Unit 4719 Box 7394", "P.O. Box 12"
        return _BOX_BEFORE.search(z[max(0, start - 16) : start]) is not None
    if word in _PLAIN_STREET_WORDS or (
        word.endswith(_COMPOUND_ENDINGS) and _COMPOUND_TYPES.search(word)
    ):
        return True  # "Király u. 15", "Erzsébet tér 19", "Kiannonkatu 98"
    if word in _HOUSE_NUMBER_WORDS:
        # "Jl. Rajiman No. 669", "Strada Popescu Nr. 76": a house number after a street.
        return not _STREET_PREFIXES.isdisjoint(_words_before(z, start)[-4:])
    if _native_street_context is not None:
        found = _native_street_context(z, start, comma)
        if found >= 0:  # -1: the words before are not all ASCII, and need `_fold`
            return bool(found)
    return _python_street_context(z, start, comma)


def _words_before(z: bytes, start: int) -> list[bytes]:
    before = _fold(z[max(0, start - 64) : start])
    return before.translate(None, b",:;()\"'").split()


def _python_street_context(z: bytes, start: int, comma: bool) -> bool:
    """Do the words before a name at `start` make it a street: a street prefix, an address
    word or phrase? `_sensitive.street_context` is its twin for ASCII text (the words before
    most names), where `_words_before` needs no `_fold` and the words can be compared as
    they are, without making a list of them and sets of it."""
    words = _words_before(z, start)
    recent = words[-10:]
    if _CONTEXT_WORDS.isdisjoint(recent):
        return False  # no street prefix or address phrase among the words before
    if not _STREET_PREFIXES.isdisjoint(words[-3:]):
        return True  # "ul. Miła 53", "Rua do Arenque 1634", "Via Roma, 12"
    if not _ADDRESS_WORDS.isdisjoint(recent):
        return True  # "address:"
    if not comma and not _SEND_WORDS.isdisjoint(recent[-5:]):
        return True  # "send it to"; not before "Webster, 28" (a name and an age)
    if _PAIR_FIRSTS.isdisjoint(recent):
        return False
    return not _ADDRESS_PAIRS.isdisjoint(itertools.pairwise(recent))


def _fold(text: bytes) -> bytes:
    if text.isascii():
        return text
    return text.decode("utf-8", "ignore").lower().encode()


# Addresses that are not postal.
_NOT_POSTAL = frozenset(b"email e-mail mail ip mac web memory wallet bitcoin server host".split())


def _address_field(scan: _Scan, m: re.Match[bytes], op: int) -> None:
    """`Address: ...` with a number and a word on the rest of its line."""
    label_start = len(scan.z) - m.end()
    before = scan.z[max(0, label_start - 12) : label_start].split()
    if before and before[-1].strip(b"-_") in _NOT_POSTAL:
        return
    line = scan.c[op + 1 : op + 100].split(b"\n")[0].strip()
    if (
        not line
        or line[:1] in b"[<{$#"
        or 0x30 not in line  # 0
        or not line.translate(_CLASS).count(b"a")
    ):
        return  # empty, a redaction tag (`[ADDRESS_1]`) or a template
    scan.hit("postal_address", label_start, op + 1 + len(line))


# ---------------------------------------------------------------------------------------
# Secrets in tokens

# Provider formats (prefix and body), matched at the start of a token.
_PROVIDER = re.compile(
    rb"(?:"
    rb"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{32,}"
    rb"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
    rb"|(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[0-9A-Z]{16}"
    rb"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}"
    rb"|gl(?:pat|dt|rt|ptt|cbt|imt|ft|oas|soat|agent|ffct)-[A-Za-z0-9_-]{20,}"
    rb"|xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}"
    rb"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{16,}"
    rb"|AIza[A-Za-z0-9_-]{35}|ya29\.[A-Za-z0-9_-]{20,}|GOCSPX-[A-Za-z0-9_-]{20,}"
    rb"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"
    rb"|npm_[A-Za-z0-9]{30,}|pypi-[A-Za-z0-9_-]{50,}|hf_[A-Za-z0-9]{30,}"
    rb"|do[opr]_v1_[a-f0-9]{64}|dckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}"
    rb"|(?:ATBB|ATATT3|ATCTT3|BBDC-)[A-Za-z0-9_=-]{20,}|glsa_[A-Za-z0-9_]{32,}"
    rb"|glc_[A-Za-z0-9_=-]{30,}|hv[sbr]\.[A-Za-z0-9_-]{20,}|sntry[su]_[A-Za-z0-9_=]{30,}"
    rb"|EAA[A-Za-z0-9]{30,}|sq0(?:csp|atp|idp)-[A-Za-z0-9_-]{20,}|amzn\.mws\.[0-9a-f-]{30,}"
    rb"|SWMTKN-1-[a-z0-9-]{40,}|HRKU-[A-Za-z0-9_-]{30,}|PMAK-[a-f0-9]{20,}-[a-f0-9]{20,}"
    rb"|dt0[a-zA-Z]\d\d\.[A-Z0-9]{24}\.[A-Z0-9]{64}"
    rb"|(?:xai|pplx|tvly|gsk|lin_api|ntn|sbp|vcp|llx|ops|figd|key|dop|rubygems|cosmo|nvapi)"
    rb"[_-][A-Za-z0-9_-]{20,}"
    rb"|(?:AC|AD|AL|CA|CF|CL|CN|CR|FW|IP|KS|MM|NO|PK|PN|QU|RE|SC|SD|SK|SM|TR|UT|XE|XR)"
    rb"[0-9a-f]{32}(?![A-Za-z0-9])"
    rb"|[0-9a-f]{32}-us\d{1,2}(?![A-Za-z0-9])"
    rb"|eyJ[A-Za-z0-9_-]{17,}"
    rb"|S[ACNOPUX][A-Z2-7]{54,56}(?![A-Za-z0-9])|oy2[a-z0-9]{43}(?![A-Za-z0-9])"
    rb"|TlRMTVNTUAAD[A-Za-z0-9+/=]{8,}|LS0tLS1CRUdJTi[A-Za-z0-9+/=]{20,}"
    rb")"
)
_WEBHOOK = re.compile(
    rb"hooks\.slack\.com/(?:services|workflows)/T[A-Z0-9]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"
    rb"|discord(?:app)?\.com/api/webhooks/\d{10,}/[A-Za-z0-9_-]{30,}"
)
# `prefix_` or `prefix-` then a long body: how most providers shape their keys.
_PREFIXED = re.compile(
    rb"([A-Za-z][A-Za-z0-9]{1,11})[_-](?:[A-Za-z0-9]{1,8}[_-])?([A-Za-z0-9_-]{16,})$"
)
# Prefixes of ids and digests that APIs print in the open.
_PUBLIC_PREFIXES = frozenset(
    b"sha sha1 sha256 sha512 md5 hash commit rev revision id uuid guid build ver version"
    b" chatcmpl cmpl msg run thread asst file batch ft req request trace span etag tx txn"
    b" block sess cus pi pm price prod evt ch in ii sub si ba card src tok".split()
)
_PIECES = re.compile(rb"[/=+]")
_DIGIT_BYTES = b"0123456789"
_PARTS = re.compile(rb"[./=~]")
# Base64 of PNG, JPEG, GIF, PDF, ZIP, gzip and RIFF files.
_FILE_MAGIC = (b"iVBORw0KGgo", b"/9j/", b"R0lGOD", b"JVBERi0", b"UEsDB", b"H4sI", b"UklGR")
_SECRET_PATH_WORDS = (b"token", b"key", b"secret", b"auth", b"password", b"sig", b"credential")
_PEM_HEADER = re.compile(
    rb"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----\s*(?:[A-Za-z-]+:.*\s*)*$"
)
_ANSI_COLOUR = re.compile(rb"^[0-9;]*m")


def _long_tokens(scan: _Scan) -> None:
    """Runs of 20+ token characters: provider keys, random tokens, PEM bodies."""
    b = scan.b
    cleared: set[bytes] = set()  # code repeats its long names: each is judged once
    runs = scan.runs
    for k in range(0, len(runs), 2):
        i, j = runs[k], runs[k + 1]
        run = b[i:j]
        if b[max(0, i - 3) : i].find(b"\x1b[") >= 0:
            run = _ANSI_COLOUR.sub(b"", run)  # `\x1b[93msk-...`: the colour is no key
        # The body of a PEM private key: only its header tells it from other base64.
        lo = max(0, i - 80)
        if b.find(b"PRIVATE KEY", lo, i) >= 0 and _PEM_HEADER.search(b, lo, i):
            scan.hit("secret", i, j)
            return
        if run not in cleared:
            if _token_secret(run):
                scan.hit("secret", i, j)
                return
            cleared.add(run)


def _token_secret(run: bytes) -> bool:
    """Is one long run of token characters a credential?"""
    if (run.find(b"hooks.slack") >= 0 or run.find(b"discord") >= 0) and _WEBHOOK.search(run):
        return True
    blob = 0x2B in run or (0x2F in run and len(run) > 60 and run.find(b"//") < 0)  # + /
    # Provider keys start a token, or a piece of one after `/`, `=` or `+`.
    for piece in (run,) if blob else _PIECES.split(run):
        if len(piece) >= 16:
            p = _PROVIDER.match(piece)
            if p is not None and not _placeholder_value(p.group()):
                return True
    if len(run.translate(None, _DIGIT_BYTES)) == len(run):
        # What `_random_body` takes for random (each check below ends in it) has digits:
        # most long tokens are names in code or prose, and stop here.
        return False
    if blob or run.startswith(_FILE_MAGIC):
        return False  # base64 blobs (images, signatures) look random without being secrets
    if run.find(b"//") >= 0:
        # A URL: only a random path segment right after a secret-named one counts.
        segments = run.split(b"/")
        for i in range(1, len(segments)):
            if len(segments[i]) < 20:
                continue
            prev = segments[i - 1].lower()
            if any(w in prev for w in _SECRET_PATH_WORDS) and _random_body(segments[i]):
                return True
        return False
    for part in _PARTS.split(run):
        if len(part) < 20:
            continue
        p = _PREFIXED.match(part)
        if p is not None:
            if p.group(1).lower() in _PUBLIC_PREFIXES:
                continue  # `chatcmpl-...`, `pi_...`, `sha256-...`
            if _random_body(p.group(2)):
                return True
        if len(part) >= 24 and _random_body(part, bare=True):
            return True
    return False


# ---------------------------------------------------------------------------------------
# Labels before `:` and `=`: credential-named keys, medical fields, patient and address
# labels, `curl -u`, IPv6, chat speakers.
#
# In the reversed lower-case view what precedes an operator comes right after it, so one
# pass per operator (a fast literal skip to each `:` or `=`) reads every label, instead
# of one pass per keyword. The word lists are spelt forwards and reversed by `_words`.

# Key names ending in a credential word, or in one and a suffix (`secret_key_base`).
_SECRET_KEYWORDS = (
    "password passwd passphrase passcode pass pwd pw secret token key auth authorization"
    " credentials credential"
)
_KEY_SUFFIXES = "base value str string text plain b64 base64"
# Medical record fields ("Diagnosis:", "Blood Pressure:").
_MEDICAL_FIELDS = (
    "diagnosis diagnoses medication medications prescription prescriptions prescribed"
    " allergies allergy treatment treatment_plan condition conditions symptoms dosage"
    " medical_history surgery procedure chief_complaint test_result test_results lab_results"
    " lab_report discharge_summary medical_record health_record therapy blood_pressure"
    " blood_type blood_test cholesterol glucose vaccinations immunizations vaccination_record"
    " immunization_record medical_report health_report mri_results scan_results x-ray_results"
)
# An optional group that opens a branch (`(?:X)?Y`) is spelt `(?:XY|Y)` below: the same
# matches in the same order, but `re` runs an optional group of more than one character
# through its general repeat machinery at every operator, which made this pass about a
# fifth slower.
_SECRET_WORDS_REVERSED = _words(_SECRET_KEYWORDS, reverse=True)
_OPERATOR_TAIL = (
    rb"[=:>]?+[ \t]*+[\"'`\]]?+[ \t]*+(?:(?P<key>(?:"
    + _words(_KEY_SUFFIXES, reverse=True)
    + rb"[_.\-]?"
    + _SECRET_WORDS_REVERSED
    + rb"|"
    + _SECRET_WORDS_REVERSED
    + rb")[a-z0-9_.\-$@]*+)"
)
_EQUALS_REVERSED = re.compile(rb"=" + _OPERATOR_TAIL + rb")")
_EQUALS_AT_SOURCE = rb"=(?=" + _OPERATOR_TAIL + rb"))"
_MEDICAL_FIELDS_REVERSED = _words(_MEDICAL_FIELDS, reverse=True)
_SPEAKER_NAMES = rb"[a-z\x80-\xff'-]{2,20}+ [a-z\x80-\xff'-]{2,20}+ \][^\[\n]{1,24}+\["
_NAME_WORD = rb"[a-z\x80-\xff'-]{2,20}+ "


_PATIENT_LABELS = "patient patient_name patient_id patient_card patient_record patient_file"
_ADDRESS_LABELS = "address adresse adres anschrift indirizzo direccion"


def _colon_reversed(*, speakers: bool, at: bool = False) -> re.Pattern[bytes]:
    """The colon pass; `at`: only the colon, where the pass matches (`_python_scan`)."""
    return re.compile(_colon_reversed_source(speakers=speakers, at=at))


def _colon_reversed_source(*, speakers: bool, at: bool) -> bytes:
    return (
        (rb":(?=" if at else rb":")
        + _OPERATOR_TAIL
        # A field, or a field "for Jane Doe" ("Prescription for Jane Doe:").
        + rb"|(?P<med>"
        + _NAME_WORD
        + rb"(?:"
        + _NAME_WORD
        + rb"rof |rof )"
        + _MEDICAL_FIELDS_REVERSED
        + rb"|"
        + _MEDICAL_FIELDS_REVERSED
        + rb")(?![a-z])"
        + rb"|(?P<patient>"
        + _words(_PATIENT_LABELS, reverse=True)
        + rb")(?![a-z])"
        + rb"|(?P<address>"
        + _words(_ADDRESS_LABELS, reverse=True)
        + rb")(?![a-z])"
        # `curl -u user:password`: the user name, then the flag.
        + rb"|(?P<userpass>[^\s:'\"@/]{1,64}+['\"]?[ \t]+(?:u-|resu--))"
        # IPv6, from its last colon: at least three more groups.
        + rb"|(?P<ipv6>[0a-f]{1,4}:(?:[0a-f]{0,4}:){1,6}[0a-f]{0,4})(?![0a-z:])"
        # A chat line "[10:05 AM] Alice Brown (Designer):": a role, two names, a timestamp.
        + (
            rb"|(?P<speaker>\)[^(\n]{1,40}+\( " + _SPEAKER_NAMES + rb"|" + _SPEAKER_NAMES + rb")"
            if speakers
            else b""
        )
        + (rb"))" if at else rb")")
    )


# Speakers are read from a timestamp in brackets: a text without `]` has none, and is
# scanned without that branch, the dearest one to fail at an ordinary "Label:".
_COLON_REVERSED = _colon_reversed(speakers=True)
_COLON_NO_SPEAKERS_REVERSED = _colon_reversed(speakers=False)
_SECRET_NAME = re.compile(
    rb"""(?x)
    (?:pass(?:word|wd|phrase|code)?s?|pwd|_pw|^pw|secret|token|auth(?:orization)?
      |credentials?|key|^api)
    (?:[_.\-]?(?:value|str|string|plain|text|b64|base64|base))?$
    |^(?:pass(?:word|wd)?|pwd|pw|secret|token|key)[_\-]
    """
)
# Names with a credential word that hold something else.
_NOT_SECRET_NAMES = re.compile(
    rb"(?:author|tokeniz|tokens$|token_?type|token_?count|max_?tokens|keyword|keyboard|keypress"
    rb"|keydown|keyup|keys$|keyframe|monkey|hotkey|turkey|whiskey|jockey|donkey|key_?name"
    rb"|key_?id$|keyid$|key_?path|key_?file|passenger|compass|bypass|passage|passive|passport"
    rb"|public_?key|pubkey|primary_?key|foreign_?key|sort_?key|partition_?key|cache_?key"
    rb"|routing_?key|idempotency_?key|lookup_?key|unique_?key|dict_?key|map_?key|hash_?key"
    rb"|password_?(?:reset|field|input|label|length|policy|hint|strength|confirm\w*|min|max)"
    rb"|secretary|_len$|_length$|_size$|_count$|_url$|_uri$|_endpoint$|_type$)"
)


def _operators(scan: _Scan) -> None:
    b, z, hits = scan.b, scan.z, scan.hits
    passes: list[tuple[re.Pattern[bytes], list[int] | None]] = []
    # Where each pass matches, from the C extension; without it, each pass runs whole.
    found = scan._operators
    if found[1] if found else 0x3D in b:  # =
        passes.append((_EQUALS_REVERSED, found[1] if found else None))
    if found[0] if found else 0x3A in b:  # :
        colon = _COLON_REVERSED if 0x5D in b else _COLON_NO_SPEAKERS_REVERSED  # ]
        passes.append((colon, found[0] if found else None))
    if not passes:
        return
    rz = z[::-1]
    n = len(z)
    for pattern, starts in passes:
        if starts is None:
            matches: Iterator[re.Match[bytes]] = pattern.finditer(rz)
        else:
            matches = _matches_reversed(pattern, rz, starts)
        for m in matches:
            op = n - 1 - m.start()  # the operator's offset in the text
            kind = m.lastgroup
            if kind == "key":
                if "secret" not in hits:
                    _keyed_value(scan, n - m.end("key"), n - m.start("key"), op)
            elif kind == "med" or kind == "patient":
                if "health" not in hits:
                    _medical_field(scan, m, op)
            elif kind == "address":
                if "postal_address" not in hits:
                    _address_field(scan, m, op)
            elif kind == "userpass":
                if "secret" not in hits:
                    value, _quoted, end = _value_at(b, op + 1)
                    if _secret_value(b"password", value, quoted=False):
                        scan.hit("secret", n - m.end(), end)
            elif kind == "ipv6":
                if "ip_address" not in hits:
                    _ipv6(scan, n - m.end(), op)
            elif kind == "speaker" and "person_name" not in hits:
                _speaker(scan, m, n)


def _keyed_value(scan: _Scan, name_start: int, name_end: int, op: int) -> None:
    b = scan.b
    name = scan.z[name_start:name_end].strip(b"\"'`[]$@.-")
    if not _SECRET_NAME.search(name) or _NOT_SECRET_NAMES.search(name):
        return
    pos = op + 1
    while b[pos : pos + 1] in (b"=", b">"):
        pos += 1
    value, quoted, end = _value_at(b, _skip_spaces(b, pos))
    if value.lower() in (b"basic", b"bearer", b"token", b"digest", b"apikey"):
        value, quoted, end = _value_at(b, _skip_spaces(b, end))  # `Authorization: Basic X`
    if _secret_value(name, value, quoted=quoted):
        scan.hit("secret", name_start, end)


# ---------------------------------------------------------------------------------------
# Credential values

_QUOTES = b"\"'`"
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Forms without `=` or `:`: "password is X", SQL `PASSWORD 'X'`, `-passphrase X`.
_PASSWORD_WORD = re.compile(
    rb"pass(?:word|wd|phrase|code|in|out)?(?:[ \t]+(?:is|was)[ \t]*:?)?[ \t]+(?=\S)"
)
_SQL_IDENTIFIED = re.compile(rb"identified(?:\s+with\s+\S+)?\s+by\s+(?:password\s+)?(?=['\"`])")


def _value_at(b: bytes, pos: int) -> tuple[bytes, bool, int]:
    """The value that starts at `pos`: (value, was it quoted, end offset)."""
    q = b[pos : pos + 1]
    if q and q in _QUOTES:
        close = b.find(q, pos + 1)
        line_end = b.find(b"\n", pos + 1)
        if close < 0 or 0 <= line_end < close:
            return b"", True, pos
        return b[pos + 1 : close], True, close + 1
    end = pos
    n = len(b)
    while end < n and b[end] not in b" \t\r\n,;)}]>\"'`":
        end += 1
    return b[pos:end], False, end


def _skip_spaces(b: bytes, pos: int) -> int:
    while pos < len(b) and b[pos] in b" \t":
        pos += 1
    return pos


def _secret_value(name: bytes, value: bytes, *, quoted: bool, prose: bool = False) -> bool:
    """Does a value given to a credential-named key look like a real credential?"""
    value = value.strip()
    if not quoted:
        value = value.rstrip(b".!?,:;")
    if len(value) < 6 and not (quoted and len(value) >= 4):
        return False
    if len(value) > 400 or 0x20 in value or _placeholder_value(value):
        return False
    if value.lower() == name or value.lower().endswith(name):
        return False
    if value[:1] in b"[{(<$%@&*\\" or 0x28 in value or 0x7B in value:  # ( {
        return False
    if not quoted and 0x5B in value:  # [
        return False  # an expression: `os.environ['X']`, `cfg[key]`
    password = name.find(b"pass") >= 0 or name.endswith((b"pwd", b"_pw", b"word", b"wd", b"phrase"))
    password = password or name in (b"pw", b"pwd")
    upper, lower, digit, runs = _classes(value)
    symbols = len(value) - upper - lower - digit
    if prose and not quoted:
        # "the password is correct": only a value that is no plain word counts.
        return bool((digit or symbols) and (upper or lower))
    if not quoted and _IDENTIFIER.match(value):
        # A bare word could be a variable or a type; only randomness makes it a value.
        if password:
            return (upper > 0) + (lower > 0) + (digit > 0) >= 2 and runs >= 0.25 * len(value)
        return _random_body(value) and len(value) >= 12
    if digit == len(value):
        return len(value) >= 12 and not password
    if password:
        return bool(upper or digit or symbols)  # more than lower-case letters
    if len(value) < 8:
        return False
    return _random_body(value) or (
        len(value) >= 12 and (upper > 0) + (lower > 0) + (digit > 0) + (symbols > 0) >= 3
    )


def _password_forms(scan: _Scan) -> None:
    b, z = scan.b, scan.z
    first = scan.first(_PASS)  # the first `pass`, where the pattern can first match
    for m in _PASSWORD_WORD.finditer(z, first) if first >= 0 else ():
        s = m.start()
        flag = z[s - 1 : s] == b"-"
        prose = m.group().find(b" is") >= 0 or m.group().find(b" was") >= 0
        if not (flag or prose or b[m.end() : m.end() + 1] in (b"'", b'"', b"`")):
            continue
        value, quoted, end = _value_at(b, m.end())
        word = z[s : m.end()].split()[0]
        if _secret_value(word, value, quoted=quoted, prose=prose):
            scan.hit("secret", s, end)
            return
    if scan.first(_IDENTIFIED) >= 0:  # identified
        for m in _SQL_IDENTIFIED.finditer(z):
            value, quoted, end = _value_at(b, m.end())
            if quoted and len(value) >= 4 and not _placeholder_value(value):
                scan.hit("secret", m.start(), end)
                return


# ---------------------------------------------------------------------------------------
# Health data and chat speakers

# A real name or an id after a patient label (not `[NAME_1]`, not a heading).
_NAME_OR_ID = re.compile(
    rb"[ \t]*(?:(?:A[a-z]{1,3}\.? )?A[a-z\x80-\xff'-]+(?: A\.?)?(?: A[a-z\x80-\xff'-]+)+"
    rb"|[A0#][A0-]{2,})"
)
# A record that names its person: a patient, a name field, a birth date, a title ...
_PERSON_WORDS = (b"patient", b"name:", b"birth", b"dob", b"born", b"mr.", b"mrs.", b"ms.", b"dr.")
# ... or a full name after "for", "of" or a colon ("Medical Record for Anna Smith").
_FOR_NAME = re.compile(rb"(?:\b(?:for|of)|:)\s+[A-Z][a-z'-]+(?:\s+[A-Z]\.)?\s+[A-Z][a-z'-]+")
_FIRST_PERSON_HEALTH = re.compile(
    rb"(?:\bi\s+(?:was|am|have\s+been|'ve\s+been|got|had\s+been|just\s+got|recently\s+got)"
    rb"\s+(?:recently\s+|just\s+)?(?:diagnosed\s+with|prescribed)"
    rb"|\bi'm\s+(?:being\s+)?(?:diagnosed\s+with|prescribed)"
    rb"|\bmy\s+(?:\w+\s+)?(?:diagnosis|prescriptions?)\s+(?:is|are|was|were|:|includes?)"
    rb"|\bmy\s+(?:\w+\s+)?(?:was|is|has\s+been)\s+diagnosed\s+with"
    rb"|\bmy\s+(?:doctor|gp|physician|psychiatrist)\s+(?:has\s+)?(?:prescribed|diagnosed))"
)


def _medical_field(scan: _Scan, m: re.Match[bytes], op: int) -> None:
    """A `Patient...:` label followed by a name or an id, or a medical field with a value
    in a text that names its person."""
    label_start = len(scan.z) - m.end()
    if m.lastgroup == "patient":
        if _NAME_OR_ID.match(scan.c, op + 1):
            scan.hit("health", label_start, op + 24)
        return
    if not scan.c[op + 1 : op + 40].lstrip()[:1].isalnum():
        return  # no value: a heading or a template
    if scan.person is None:
        z = scan.z
        scan.person = any(z.find(w) >= 0 for w in _PERSON_WORDS) or bool(_FOR_NAME.search(scan.b))
    if scan.person:
        scan.hit("health", label_start, op + 24)


def _first_person_health(scan: _Scan) -> None:
    z = scan.z
    for word, index in ((b"diagnos", _DIAGNOS), (b"prescri", _PRESCRI)):
        at = scan.first(index)
        tries = 0
        while at >= 0 and tries < 32:  # bounded: a medical article repeats the words
            tries += 1
            # The person comes a few words before the verb: search only around it.
            m = _FIRST_PERSON_HEALTH.search(z, max(0, at - 48), at + 40)
            if m is not None:
                scan.hit("health", m.start(), m.end())
                return
            at = z.find(word, at + 7)


def _speaker(scan: _Scan, m: re.Match[bytes], n: int) -> None:
    """A timestamped chat line whose speaker has a capitalised first and last name. Two
    such lines make a transcript that names its participants."""
    start = n - m.end()
    stamp_end = scan.b.find(b"]", start) + 1
    names = scan.c[stamp_end + 1 : stamp_end + 44].split(b" ", 2)
    if len(names) < 2 or names[0][:1] != b"A" or names[1][:1] != b"A":
        return
    if 0x30 not in scan.c[start:stamp_end]:
        return  # the bracket holds no time
    if scan.speakers:
        scan.hit("person_name", start, n - m.start())
    scan.speakers += 1


# ---------------------------------------------------------------------------------------
# Where the passes match


class _Passes(NamedTuple):
    """The patterns of the passes that `_sensitive.scan` makes in C. Compiled when the
    pure-Python scan first needs them: with the extension, never (~17 ms of start-up)."""

    digits: re.Pattern[bytes]
    names: re.Pattern[bytes]
    colon: re.Pattern[bytes]
    colon_no_speakers: re.Pattern[bytes]
    equals: re.Pattern[bytes]


@functools.cache
def _passes() -> _Passes:
    return _Passes(
        re.compile(_DIGITS_SOURCE),
        re.compile(_NAME_NUMBER_REVERSED_SOURCE),
        re.compile(_colon_reversed_source(speakers=True, at=True)),
        re.compile(_colon_reversed_source(speakers=False, at=True)),
        re.compile(_EQUALS_AT_SOURCE),
    )


# The branches of the digit pass (`_DIGITS_SOURCE`), as numbers.
_IBAN, _RUN, _BUILDING = 0, 1, 2
_DIGIT_KINDS = {"iban": _IBAN, "run": _RUN, None: _BUILDING}
_TOKEN_RUN = b"x" * 20


def _python_scan(b: bytes) -> _Found:
    """The views of UTF-8 `b`, where each pass over them matches, and the first offsets of
    some words: what the C extension `_sensitive` computes in one call, in plain loops
    without `re` stopping at every digit, colon and `=` to try a pattern that mostly fails
    there. Without the extension each part is computed when first needed (`_Scan`).

    Offsets are in the text; those of the passes over reversed views come last first, as
    the reversed view is read. `digits`: (start, end, branch) of each match of the digit pass.
    `names`: (word start, number end) of each name and house number. `colons`, `equals`:
    where the operator passes match. `runs`: the start and end of each run of 20 or more
    token characters. The words: `pass`, `identified`, `diagnos`, `prescri` in `z` and
    `://` in `b` (-1 for none).
    """
    c = b.translate(_CASE_SHAPE)
    z = b.translate(_LOWER_ZERO)
    colons, equals = _python_operators(b, z)
    return (
        c,
        z,
        _python_digits(c),
        _python_names(c),
        colons,
        equals,
        _python_runs(b),
        _python_words(b, z),
    )


def _python_digits(c: bytes) -> list[int]:
    digits: list[int] = []
    for m in _passes().digits.finditer(c):
        digits += (m.start(), m.end(), _DIGIT_KINDS[m.lastgroup])
    return digits


def _python_names(c: bytes) -> list[int]:
    names: list[int] = []
    if 0x30 not in c:  # 0
        return names
    rc = c[::-1]
    n = len(rc)
    for m in _passes().names.finditer(rc):
        # The match starts at the first digit of the number; the other digits come before
        # it in the reversed view, and must not run into letters.
        k = m.start()
        while k > 0 and rc[k - 1] == 0x30 and m.start() - k < 5:
            k -= 1
        if k > 0 and rc[k - 1 : k].isalpha() and not rc[k - 2 : k - 1].isalnum():
            k -= 1  # a house number with a letter: "1b", "12A"
        if k > 0 and (rc[k - 1 : k].isalpha() or rc[k - 1] == 0x30):
            continue
        names += (n - m.end(), n - k)
    return names


def _python_operators(b: bytes, z: bytes) -> tuple[list[int], list[int]]:
    """Where the colon and `=` passes match. A pattern in a lookahead after its first
    character matches that character wherever the whole pattern would, so `finditer` finds
    every such place, even one inside another match."""
    colons: list[int] = []
    equals: list[int] = []
    if 0x3A in b or 0x3D in b:  # : =
        rz = z[::-1]
        n = len(rz)
        if 0x3A in b:
            passes = _passes()
            colon = passes.colon if 0x5D in b else passes.colon_no_speakers  # ]
            colons = [n - 1 - m.start() for m in colon.finditer(rz)]
        if 0x3D in b:
            equals = [n - 1 - m.start() for m in _passes().equals.finditer(rz)]
    return colons, equals


def _python_runs(b: bytes) -> list[int]:
    runs: list[int] = []
    t = b.translate(_TOKEN)
    i = t.find(_TOKEN_RUN)
    while i >= 0:
        j = t.find(b" ", i)
        if j < 0:
            j = len(t)
        runs += (i, j)
        i = t.find(_TOKEN_RUN, j)
    return runs


# Words whose first offset some passes start from or depend on: (in the lower-case view?,
# word). `_sensitive.scan` looks for the same.
_WORDS: tuple[tuple[bool, bytes], ...] = (
    (True, b"pass"),
    (True, b"identified"),
    (True, b"diagnos"),
    (True, b"prescri"),
    (False, b"://"),
)
_PASS, _IDENTIFIED, _DIAGNOS, _PRESCRI, _URL = range(len(_WORDS))


def _python_words(b: bytes, z: bytes) -> tuple[int, ...]:
    return tuple((z if lower else b).find(word) for lower, word in _WORDS)


def _matches_reversed(
    pattern: re.Pattern[bytes], reversed_view: bytes, starts: list[int]
) -> Iterator[re.Match[bytes]]:
    """What `pattern.finditer(reversed_view)` finds, tried only at `starts`: the offsets in
    the text where it matches, last first (`_python_operators`). As in `finditer`, a match
    hides the places inside it."""
    after = 0
    top = len(reversed_view) - 1
    for start in starts:
        at = top - start
        if at >= after:
            m = pattern.match(reversed_view, at)
            if m is not None:
                after = m.end()
                yield m


# The word lists of the patterns that `_sensitive.scan` reads, spelt as the patterns spell
# them, then the words that `_sensitive.street_context` looks for (its `setup` takes them
# in this order).
_SCAN_WORDS = (
    _spelt(_SECRET_KEYWORDS, reverse=True),
    _spelt(_KEY_SUFFIXES, reverse=True),
    _spelt(_MEDICAL_FIELDS, reverse=True),
    _spelt(_PATIENT_LABELS, reverse=True),
    _spelt(_ADDRESS_LABELS, reverse=True),
    _spelt(_LOWER_PREFIX_WORDS.replace("|", " ")),
    _spelt(_PLAIN_STREETS),
    _spelt(_LOWER_STREET_WORDS, reverse=True),
    tuple(sorted(_STREET_PREFIXES)),
    tuple(sorted(_ADDRESS_WORDS)),
    tuple(sorted(_SEND_WORDS)),
    tuple(sorted(first + b" " + second for first, second in _ADDRESS_PAIRS)),
    # The words that `_sensitive.number` reads: those of `_LABEL_REVERSED` (the fillers,
    # the tails, the tails that make a phone, then each kind of label in the order of
    # `_LABELS`, the order in which the pattern and C try them) and the US states.
    _spelt(_FILLERS, reverse=True),
    _spelt(_LABEL_TAILS, reverse=True),
    _NUMBER_TAILS,
    *(_spelt(words, reverse=True) for words in _LABELS.values()),
    tuple(sorted(_US_STATES)),
    # The words that `_sensitive.building_number` reads: the street types of
    # `_STREET_AFTER` and those that `_street_after` looks up, the words of
    # `_NUMBER_NAME_NUMBER`'s check, the prefixes of `_NUMBER_PREFIX_NAME` and its articles
    # (`_LOWER_PREFIXES` are the lower-case prefixes above).
    _spelt(_STREET_TYPE_WORDS),
    tuple(sorted(_AMBIGUOUS_TYPES)),
    tuple(sorted(_MORE_SUFFIXES)),
    tuple(sorted(_NOT_STREETS)),
    _spelt(_PREFIX_WORDS.replace("|", " ")),
    _spelt(_PREFIX_ARTICLES),
)
_native_scan: Callable[[bytes], _Found] | None = None
_native_street_context: Callable[[bytes, int, bool], int] | None = None
_native_number: Callable[[bytes, bytes, bytes, int, int], tuple[str, int, int] | None] | None = None
_native_building_number: Callable[[bytes, bytes, bytes, int], tuple[int, int] | None] | None = None
try:
    native.allow()
    from . import _sensitive
except ImportError:  # not built (no C compiler) or SIDECAR_PURE_PYTHON: the same results,
    # about twice as slow
    pass
else:
    _sensitive.setup(*_SCAN_WORDS)
    _native_scan = _sensitive.scan
    _classes = _sensitive.classes
    _native_street_context = _sensitive.street_context
    _native_number = _sensitive.number
    _native_building_number = _sensitive.building_number


# ---------------------------------------------------------------------------------------


def detect(text: str, *, utf8: bytes | None = None) -> dict[str, str]:
    """Each kind found in `text`, with the first piece of text that shows it. `utf8`, when
    given, is `text` in UTF-8 (lone surrogates passed through), not encoded again."""
    if not text:
        return {}
    scan = _Scan(text, utf8)
    hits = scan.hits
    # A pass with nothing to look at is not called: most texts have no candidate for most
    # passes, and a call costs about as much as the tests below. The C scan says where each
    # pass's candidates are (`words`, `operators`); without it each pass finds out itself.
    words, operators = scan._words, scan._operators
    has_digits = 0x30 in scan.c
    if has_digits:
        if scan.digits:
            _numbers(scan)
        if "postal_address" not in hits and scan.names:
            _addresses(scan)
    if operators is None or operators[0] or operators[1]:
        _operators(scan)
    if "secret" not in hits and (words is None or words[_PASS] >= 0 or words[_IDENTIFIED] >= 0):
        _password_forms(scan)
    # Passes that look for a secret among other things come after the key assignments
    # and passwords above, and the token pass, the dearest, last: a secret already found
    # lets them stop early or not run. Secrets without a single digit are too rare to pay
    # for the token view.
    if 0x40 in scan.b:  # @
        _emails(scan)
    if has_digits and "secret" not in hits and scan.runs:
        _long_tokens(scan)
    if "health" not in hits and (words is None or words[_DIAGNOS] >= 0 or words[_PRESCRI] >= 0):
        _first_person_health(scan)
    return scan.hits


class SensitiveClassifier:
    """Personal data and secrets in the prompt: whether there are any, and which kinds."""

    name = "sensitive"
    outputs: Mapping[str, str] = {"found": "bool", "kinds": "list"}

    def classify(self, prompt: Prompt) -> Mapping[str, Any]:
        kinds = sorted(detect(prompt.text, utf8=prompt.utf8))
        return {"found": bool(kinds), "kinds": kinds}


@hookimpl(trylast=True)
def register_classifiers() -> SensitiveClassifier:
    return SensitiveClassifier()
