"""The `sensitive` classifier: each kind of personal data and secret, its look-alikes, and
its recall and false positives on the labelled dev set."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar import hookspecs
from sidecar.classifier import OUTPUT_TYPES, Prompt
from sidecar.classifiers import sensitive
from sidecar.classifiers.sensitive import SensitiveClassifier, detect

DEV = Path(__file__).resolve().parents[2] / "shared" / "evaldata" / "dev.jsonl"

# (kind, text): the text must be reported with that kind (other kinds may come too).
POSITIVES: list[tuple[str, str]] = [
    ("email", "Contact me at maria.gonzalez87@yahoo.es for details."),
    ("email", "From: j.doe+news@sub.example.co.uk"),
    ("email", "Test Results for Patient: Michael Johnson, Email: michael.johnson@example.com."),
    ("phone", "You can reach me at +44 20 7946 0958 after 5pm."),
    ("phone", "Call (212) 555-0147 tomorrow."),
    ("phone", "They're not answering at 780-999-2181"),
    ("phone", "Please have the manager call me at 0494 92 82 32"),
    ("phone", "Can someone call me on 9472 7916? I have some questions."),
    ("phone", "Phone:\n60-56-85-91"),
    ("phone", "Customer Service: 1-800-555-0199"),
    ("phone", "Hi, my number is 555-1234."),
    ("payment_card", "My card 348336950008010 is expiring this month."),
    ("payment_card", "Charge it to 4929 1208 3419 2250 please"),
    ("payment_card", "my credit card number is 675984103431?"),
    ("payment_card", "My card 4131034282458809939 is expiring this month."),
    ("iban", "a wire transfer using this IBAN GB05QJZO19199608871268"),
    ("iban", "Please wire to DE89 3704 0044 0532 0130 00."),
    ("iban", "IBAN: PL61 1090 1014 0000 0712 1981 2874"),
    ("national_id", "His social security number is 853-37-1694"),
    ("national_id", "SSN 219099999"),
    ("national_id", "my driver's license number is 2270-66-1551"),
    ("national_id", "Her driving licence number is MORGA753116SM9IJ"),
    ("national_id", "PESEL: 85010212345"),
    ("national_id", "NIP: 123-456-78-90"),
    ("national_id", "an unlabelled 44051401359 that passes PESEL's checksum"),
    ("ip_address", "The server at 52.14.88.201 keeps timing out"),
    ("ip_address", "connect to 2a00:1450:4001:81c::200e"),
    ("ip_address", "My IP address is 192.168.1.23"),
    ("postal_address", "Patient Name: Sarah Johnson, Address: 123 Maple Street, Springfield."),
    ("postal_address", "Sure, it's 456 Elm St, Anytown, USA."),
    ("postal_address", "I'd like it to be sent to 19607 107 Igias Street"),
    ("postal_address", "Andrew had given Andrew his address: 5366 Pivovarská 276"),
    ("postal_address", "He lives on the north side of Joaquin Suarez 2906."),
    ("postal_address", "The office is at Růžena and Király u. 15."),
    ("postal_address", "Đoko and ul. Miła 53"),
    ("postal_address", "Tomomi Nishiyama lives at 86036 Rua do Arenque 1634, Goiânia"),
    ("postal_address", "naomi ryan\n3747 3911 fourth avenue suite 112 calgary alberta"),
    ("postal_address", "the corner of heiligengeistbrücke 77 and minik courts"),
    ("postal_address", "Meet me at PSC 1437, Box 3833\nAPO AA 66791"),
    ("postal_address", "Please return to 56539 Rua Cyro Schmutzer Franco 1213\nGRASSE, PA 39551"),
    ("postal_address", "5678 Via Tranquila, San Diego"),
    ("postal_address", "Meine Adresse ist Hauptstraße 5, 10115 Berlin"),
    ("postal_address", "deliver to 48 Oakwood Lane, Apt 3B"),
    ("postal_address", "J'habite au 5, rue de Rivoli à Paris"),
    ("postal_address", "I live at 743 Elliott Burgs."),
    ("postal_address", "I moved to 12 Park Avenue"),
    ("postal_address", "Please send it to Jl. Rajiman No. 669"),
    ("postal_address", "Zarnikova ulica 417"),
    ("postal_address", "Please send it to Λεωφόρος Αμπελακίων 22"),
    ("postal_address", "Kiannonkatu 98, Helsinki"),
    ("postal_address", "I live at 4 Little Saint James Avenue now."),
    ("postal_address", "please send it to Joaquin Suarez 2906"),
    ("postal_address", "He has Suite 245 booked"),
    ("health", "Patient Record: David Brown. Diagnosis: Type 2 Diabetes. Medication: Metformin."),
    ("health", "Lab Results for Patient: Linda Green. Test: Blood Sugar Level, Result: 150 mg/dL."),
    ("health", "Medical Record for Anna Smith. Diagnosis: Asthma."),
    ("health", "Patient ID: 4567, Nurse: Emily Davis."),
    ("health", "I was diagnosed with bipolar disorder last year; what should I tell my boss?"),
    ("health", "My son was diagnosed with ADHD, what should we do?"),
    ("account_number", "Account Number: 2233445566"),
    ("account_number", "Your policy number is 4455667788. For inquiries, email us."),
    ("account_number", "Policy Number: POL123456789."),
    ("account_number", "Insurer: Global Insurance Co. Policy Number: 555-123-456."),
    ("account_number", "Claim ID: CLM-2023-88817"),
    (
        "person_name",
        "[4:00 PM] Laura Green (Project Coordinator): Hi everyone.\n"
        "[4:01 PM] Chris Black (Product Manager): Yes, Laura. My number is [PHONE_1].",
    ),
    ("secret", "OPENAI_API_KEY=sk-proj-4fJk2LmN9pQ8rS7tU6vW5xY3zA1bC0dE2fG4hI6jK8lM"),
    ("secret", "sk-ant-api03-gigCtxD_mMUnJuUOwVtpBmPFdG0-ybrcBb1EcgpJblpcwh7tpFu-DIChOfbCnT7NgK"),
    ("secret", '"AccessKeyId" : "AKIA0ON7V2DD57PL3JXM",'),
    ("secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzAbCdEf12345"),
    ("secret", "export GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("secret", "xoxb-391809548274-4236212766789-i8EoyACELx2FYnSOkRPEpePN"),
    ("secret", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr"),
    ("secret", "key = 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'"),
    ("secret", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVm"),
    ("secret", "vcp_5G8LQP7fmw80eG7W8y0sWO1QFPuhsYUuLEqyd1ialdvz9r6pL4vzxkC3"),
    ("secret", ">>>\x1b[93msk-615ef152bf865a131f88b23571dc4ee6\x1b[0m<<<"),
    ("secret", "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA12Fh"),
    ("secret", "db_url = 'postgres://admin:S3cr3tPa55@db.internal:5432/app'"),
    ("secret", 'gi_reo_gi_passwd = "cAc48k1Zd7"; password_confirmation = "cAc48k1Zd7";'),
    ("secret", "MYSQLPASS: Ce7shE0ENPiBlE_EdEose0cBAA\nmy_pw: nCzx8A8#!"),
    ("secret", "gpg --decrypt --passphrase N1DdkUD3E73 --output out.txt in.gpg"),
    ("secret", "ALTER USER 'root'@'localhost' IDENTIFIED BY 'SqLpa5sW0rD';"),
    ("secret", 'curl -H "Authorization: Basic R2hyZG5oYzpycWVpIGVuZ2xiZg==" http://localhost/'),
    ("secret", "curl -u admin:Pa55w0rd! https://example.org/api"),
    ("secret", "My password is Summer2024!"),
    (
        "secret",
        "194206074328-qp89pdv6fi35vsi71258g1eh31q6h7c3.apps.googleusercontent.com\n"
        "4L2QMyTm6Rr0o46ytGiReoG1",
    ),
]

# Look-alikes: none of these may be reported at all.
NEGATIVES: list[str] = [
    # An order number is no card, and neither is a card label on a number failing Luhn.
    "Your order number is 4111111111111112.",
    "My card number is 4111111111111112.",
    "Timestamp 1722943144000 ms since epoch.",
    "\\frac{d}{dx}180218398219329",
    # Test card numbers and dummy phones of repeated digits.
    "Write a regex that matches credit card numbers like 4111-1111-1111-1111.",
    "Phone numbers in the US have 10 digits, like 555-555-5555.",
    # An IBAN with a wrong checksum is no IBAN.
    "Invalid IBAN: GB82WEST12345698765431",
    # `sk-` in prose, placeholders, expressions and type names are no secrets.
    "Explain how the sk- prefix works for OpenAI API keys.",
    "OPENAI_API_KEY=sk-...",
    "Set OPENAI_API_KEY=<YOUR_API_KEY> in your .env file.",
    "api_key: ${API_KEY}",
    "token=xxx",
    "password: changeme",
    "password = '****'",
    "api_key = 'your-api-key-here'",
    "token: ${{ secrets.GITHUB_TOKEN }}",
    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "password = os.environ['DB_PASSWORD']",
    "def check(password: str) -> bool:\n    return len(password) > 8",
    "headers = {'Authorization': 'Bearer ' + access_token}",
    "postgresql://user:password@localhost:5432/mydb",
    "I forgot my password, how do I reset it?",
    "max_tokens: 4096\ntemperature: 0.7",
    "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
    # Digests, UUIDs, public ids and base64 images look random without being secrets.
    "Commit 2171e17381d051fe5014553facf550c3796b6647 fixed it.",
    "UUID: 123e4567-e89b-12d3-a456-426614174000",
    '{"id": "chatcmpl-8XyZ123AbC456DeF789GhI", "object": "chat.completion"}',
    "img = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAA'",
    "https://docs.google.com/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
    # General medical questions and redacted records are no health data.
    "What is diabetes?",
    "How is hypertension diagnosed, and what are the side effects of metformin 500mg?",
    "1. Patient Information:\nCreate a section for patient demographics.",
    "Test Results for Patient: [NAME_1], Email: [EMAIL_1]. Results: Cholesterol level high.",
    "Diagnosis: the process of identifying a disease. Symptoms: vary.",
    # Versions and infrastructure addresses are no IP addresses (see test_versions_vs_ips).
    "Upgrade from 1.2.3.4 to 1.2.4.0",
    "The version is 2.10.15.100",
    "OID 10.1.2.3.4 is not an address",
    "Listen on 0.0.0.0:8080 and 127.0.0.1, use 192.168.1.10 for the gateway",
    'brokers = "10.20.123.115:9092,10.20.123.116:9092"',
    "Server 52.14.88)201 is down, 10.1.2)01 too",  # no address (and `_ipv4` reads dots only)
    # Numbers of everyday text.
    "In 1992 Clinton won 370 electoral votes.",
    "The population grew from 1,234,567 to 2,345,678 between 2001 and 2011.",
    "Solve 3x + 5 = 20 and report x to 4 decimal places: 3.14159.",
    "The meeting is on 2023-09-15 at 14:00; the deadline was 05/30/1978.",
    "Ms. Cruz has a $400 000 budget and saw a house for $350 000.",
    "Chapter 12 Section 3 covers the topic. Windows 10 and Python 3.11 are required.",
    "He walked 5 minutes walk down the road, at 7 PM at my place.",
    "1980 Mount St. Helens erupted.",
    "the 1992 Olympic Village; sent 5 via email; Der Verein steht auf Platz 1.",
    "Gate 12 is closed, Terminal 5 at Heathrow, Room 101, go to Page 5.",
    "server 10.0.0.5 is down",
    "My order number is 987654321 and my ticket is #123456.",
    "In October 1851 Paul Julius Reuter opened an office in London.",
    "Mr. Webster, 28, of Springfield was there.",
    # Redaction tags, placeholder mailboxes and scp remotes.
    "My email address is [EMAIL_1], my phone is [PHONE_1], Address: [ADDRESS_1].",
    "[8:00 AM] [NAME_1]: Good morning, [NAME_2]!\n[8:01 AM] [NAME_2]: Morning!",
    "Use user@example.com as the login.",
    "git clone git@github.com:org/repo.git",
]


@pytest.mark.parametrize(("kind", "text"), POSITIVES)
def test_positive(kind: str, text: str) -> None:
    found = detect(text)
    assert kind in found, found


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative(text: str) -> None:
    assert detect(text) == {}


def test_versions_vs_ips() -> None:
    """A dotted quad of small numbers (`1.2.3.4`, `8.8.8.8`) is taken for a version: with
    fewer than five digits it is not even a candidate. Longer ones are addresses unless a
    version word comes before them, a fifth part follows, or the range is not public."""
    assert "ip_address" in detect("Login from 203.45.198.2 was blocked")
    assert "ip_address" not in detect("Login from 8.8.8.8 was blocked")
    assert "ip_address" not in detect("release 203.45.198.2")
    assert "ip_address" not in detect("203.45.198.2.7")
    assert "ip_address" not in detect("198.51.100.7 is a documentation address")


def test_speakers_need_a_bracketed_timestamp() -> None:
    """Texts without `]` are scanned without the speaker branch: it could not match."""
    lines = (
        "[4:00 PM] Laura Green (Project Coordinator): Hi everyone.\n"
        "[4:01 PM] Chris Black (Product Manager): Yes, Laura."
    )
    assert "person_name" in detect(lines)
    assert "person_name" not in detect(lines.replace("[", "(").replace("]", ")"))


def test_street_type_prefilter_agrees_with_each_word_count() -> None:
    """One pattern says whether a street type follows a building number within three
    words; it must match exactly where one of the patterns per word count does."""
    rng = random.Random(5)
    words = [
        *("12", "4b", "1851", "Paul", "Julius", "park", "Park", "avenue", "Avenue", "st."),
        *("St", "rd", "walk", "minutes", "Way", "the", "Old", "Mill", "creek", "Road,"),
        *("rue", "de", "(x)", "'q'", "<a>", "straße", "Κάτι", "\n", "\t", ","),
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
    texts += [row["messages"][-1]["content"] for row in dev_rows() if row["sensitive"]]
    checked = 0
    for text in texts:
        z = text.encode("utf-8", "surrogatepass").translate(sensitive._LOWER_ZERO)
        for at in range(len(z)):
            if z[at] == 0x30:
                each = any(p.match(z, at) for p in sensitive._STREET_AFTER)
                assert (sensitive._ANY_STREET_AFTER.match(z, at) is not None) == each, text
                checked += each
    assert checked > 100


def test_kinds_are_reported_together() -> None:
    text = (
        "Could you please send me the last billed amount for cc 4007070753690781 on my "
        "e-mail UtaKortig@jourrapide.com? Call me at (555) 123-4567."
    )
    assert sorted(detect(text)) == ["email", "payment_card", "phone"]


def test_classifier_scans_every_message() -> None:
    classifier = SensitiveClassifier()
    prompt = Prompt.from_messages(
        [
            {"role": "system", "content": "Use the key sk-proj-4fJk2LmN9pQ8rS7tU6vW5xY3zA1bC0dE2."},
            {"role": "user", "content": [{"type": "text", "text": "Mail a.b@firma.de please"}]},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": "Thanks"},
        ]
    )
    assert classifier.classify(prompt) == {"found": True, "kinds": ["email", "secret"]}
    clean = Prompt.from_messages([{"role": "user", "content": "What is diabetes?"}])
    assert classifier.classify(clean) == {"found": False, "kinds": []}
    assert classifier.classify(Prompt.from_messages([])) == {"found": False, "kinds": []}


def test_outputs_are_declared_with_cel_types() -> None:
    classifier = SensitiveClassifier()
    assert classifier.name == "sensitive"
    assert dict(classifier.outputs) == {"found": "bool", "kinds": "list"}
    assert set(classifier.outputs.values()) <= set(OUTPUT_TYPES)


def test_hook_register_classifiers_returns_the_sensitive_classifier() -> None:
    assert sensitive.register_classifiers.sidecar_impl["trylast"]  # type: ignore[attr-defined]
    manager = pluggy.PluginManager("sidecar")
    manager.add_hookspecs(hookspecs)
    manager.register(sensitive)
    (registered,) = manager.hook.register_classifiers(settings=None)
    assert isinstance(registered, SensitiveClassifier)


def test_odd_text_does_not_break_it() -> None:
    for text in ("", "\x00", "\ud800 lone surrogate", "@" * 50, ":" * 50, "0" * 500, "é" * 99):
        assert isinstance(detect(text), dict)


def dev_rows() -> list[dict[str, Any]]:
    if not DEV.exists():
        return []
    return [json.loads(raw) for raw in DEV.read_text().splitlines()]


def test_dev_set_recall_and_false_positives() -> None:
    """At least 99% of the sensitive rows of dev.jsonl found, at most 3% of the others."""
    if not DEV.exists():
        pytest.skip(f"{DEV} is not there")
    classifier = SensitiveClassifier()
    found = missed = false_positives = clean = 0
    for raw in DEV.read_text().splitlines():
        row = json.loads(raw)
        result = classifier.classify(Prompt.from_messages(row["messages"]))
        if row["sensitive"]:
            found += result["found"]
            missed += not result["found"]
        else:
            false_positives += result["found"]
            clean += not result["found"]
    assert found + missed > 0
    assert found / (found + missed) >= 0.99
    assert false_positives / (false_positives + clean) <= 0.03


_REPEATED_CARDS = [
    ("my card 4111 1111 1111 1111", True),
    ("Refund the order to my card 5555 5555 5555 4444 please", True),
    ("Visa 4111111111111111", True),
    ("use the test number 4242 4242 4242 4242 in Stripe's sandbox", False),
]


@pytest.mark.parametrize(("text", "found"), _REPEATED_CARDS)
def test_repeated_digit_card_numbers_count_after_a_card_word(text: str, found: bool) -> None:
    result = SensitiveClassifier().classify(
        Prompt.from_messages([{"role": "user", "content": text}])
    )
    assert result["found"] is found


# ---------------------------------------------------------------------------------------
# The C extension `_sensitive` and its pure-Python twin: the same views, places and words
# for any text, hence the same kinds. A fragment list makes the patterns' rare branches
# (IPv6, chat speakers, `curl -u`, IBANs, street words) come up often.

_FRAGMENTS = [
    *"0123456789 -./()+,:;=@]['\"`\n\t_aBxZéЖ$#*~",
    "12",
    "555",
    "4111",
    "2024",
    "DE89",
    "GB05",
    "PL61",
    "AA00",
    "::1",
    "2a00:",
    "81c:",
    "fe80",
    "password",
    "passwd",
    "secret_key",
    "api_key",
    "token",
    "auth",
    "Authorization",
    "key",
    "_value",
    "-base64",
    "Patient",
    "patient id",
    "Diagnosis",
    "blood pressure",
    " for ",
    "Anna Smith",
    "Address",
    "adresse",
    "curl -u ",
    "--user ",
    "[10:05 AM] ",
    "Alice Brown ",
    "(Designer)",
    "Street",
    " main street",
    "rue ",
    "allée ",
    "ul. ",
    "Miła ",
    "utca ",
    "katu",
    "д. ",
    "буд ",
    "Apt ",
    "Suite ",
    "Box ",
    "version ",
    "my IP is ",
    "phone ",
    "card ",
    "identified by ",
    "pass",
    "diagnosed with ",
    "prescri",
    "://",
    "sk-",
    "ghp_",
    "AKIA",
    "Abc9XyZ12qWe8Rt",
    "x" * 19,
    "Y" * 21,
    "\x1b[93m",
]
_FRAGMENT_TEXT = st.lists(st.sampled_from(_FRAGMENTS), max_size=60).map("".join)
_ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=400)


def _native() -> Any:
    if sensitive._native_scan is None:
        pytest.skip("the C extension _sensitive is not built")
    return sensitive._native_scan


@settings(max_examples=400, deadline=None)
@given(_FRAGMENT_TEXT | _ANY_TEXT)
def test_native_scan_equals_the_python_twin(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    assert _native()(data) == sensitive._python_scan(data)


@settings(max_examples=200, deadline=None)
@given(_FRAGMENT_TEXT)
def test_native_and_python_paths_detect_the_same(text: str) -> None:
    scan = _native()
    with pytest.MonkeyPatch.context() as patch:
        with_c = detect(text)
        patch.setattr(sensitive, "_native_scan", None)
        assert detect(text) == with_c
    assert sensitive._native_scan is scan


def test_native_scan_equals_the_python_twin_on_the_dev_set_and_examples() -> None:
    scan = _native()
    texts = [row["messages"][0]["content"] for row in dev_rows()]
    texts += [text for _kind, text in POSITIVES] + NEGATIVES
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        assert scan(data) == sensitive._python_scan(data), text[:80]


@pytest.mark.parametrize("text", [text for _kind, text in POSITIVES] + NEGATIVES)
def test_the_python_path_detects_the_same(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = detect(text)  # with the C extension where it is built
    monkeypatch.setattr(sensitive, "_native_scan", None)
    assert detect(text) == expected


def test_native_scan_rejects_bad_arguments() -> None:
    _native()
    from sidecar.classifiers import _sensitive

    with pytest.raises(TypeError):
        _sensitive.scan("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _sensitive.setup(())
    with pytest.raises(TypeError):
        _sensitive.setup(*([("word",)] * len(sensitive._SCAN_WORDS)))  # type: ignore[list-item]
    assert _sensitive.scan(b"") == (b"", b"", [], [], [], [], [], (-1, -1, -1, -1, -1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | _FRAGMENT_TEXT.map(lambda text: text.encode("utf-8")))
def test_native_classes_equal_the_python_twin(data: bytes) -> None:
    _native()
    from sidecar.classifiers import _sensitive

    assert _sensitive.classes(data) == sensitive._python_classes(data)
    assert sensitive._classes is _sensitive.classes


def test_native_classes_rejects_bad_arguments() -> None:
    _native()
    from sidecar.classifiers import _sensitive

    with pytest.raises(TypeError):
        _sensitive.classes("text")  # type: ignore[arg-type]
    assert _sensitive.classes(b"") == (0, 0, 0, 0)
    assert _sensitive.classes(b"aB3-x") == sensitive._python_classes(b"aB3-x") == (1, 2, 1, 5)


_STREET_FRAGMENTS = [
    *"0123456789 ,.aZé",
    "12 ",
    "5, ",
    "rue ",
    "Rue ",
    "via ",
    "viale ",
    "vila ",
    "rua ",
    "praça ",
    "улица ",
    "de ",
    "do ",
    "della ",
    "strasse",
    "straße",
    "weg",
    "ringen",
    "katu",
    "tie",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_STREET_FRAGMENTS), max_size=12).map("".join))
def test_street_shortcuts_agree_with_the_plain_patterns(text: str) -> None:
    # The prefix trie matches what the plain alternation of the prefixes matches, and
    # `endswith` finds every word that ends in a compound street type.
    plain = re.compile(
        rb"0{1,6}[a-z]?,? (?:" + sensitive._PREFIX_WORDS.encode() + rb")"
        rb"(?: (?:de|do|da|del|della|di|la|le|les|du|des|dos|das)(?= ))*+ "
    )
    z = text.encode().translate(sensitive._LOWER_ZERO)
    for start in range(len(z)):
        expected = plain.match(z, start)
        found = sensitive._NUMBER_PREFIX_NAME.match(z, start)
        assert (found and found.end()) == (expected and expected.end())
    for word in z.split():
        if sensitive._COMPOUND_TYPES.search(word):
            assert word.endswith(sensitive._COMPOUND_ENDINGS)


_CONTEXT_FRAGMENTS = [
    *sensitive._CONTEXT_WORDS,
    *(first + b" " + second for first, second in sensitive._ADDRESS_PAIRS),
    *(bytes([byte]) for byte in b" \t\n\x0b\x0c\r\x1c,:;()\"'.-0ax"),
    b"the",
    b"street",
    b"\xc3\xa9",
    b"\xe2\x84\xaa",  # KELVIN SIGN: lower case is the ASCII `k`
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_CONTEXT_FRAGMENTS), max_size=40).map(b"".join), st.booleans())
def test_native_street_context_equals_the_python_twin(z: bytes, comma: bool) -> None:
    _native()
    from sidecar.classifiers import _sensitive

    for start in range(0, len(z) + 1, max(1, len(z) // 8)):
        found = _sensitive.street_context(z, start, comma)
        if z[max(0, start - 64) : start].isascii():
            assert found == sensitive._python_street_context(z, start, comma)
        else:
            assert found == -1  # left to Python, which folds the case of the words first


def test_native_street_context_rejects_bad_arguments() -> None:
    _native()
    from sidecar.classifiers import _sensitive

    with pytest.raises(TypeError):
        _sensitive.street_context("lives at ", 9, False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range"):
        _sensitive.street_context(b"lives at ", 10, False)
    with pytest.raises(ValueError, match="out of range"):
        _sensitive.street_context(b"lives at ", -1, False)
    assert _sensitive.street_context(b"she lives at ", 13, False) == 1
    assert _sensitive.street_context(b"", 0, True) == 0


# ---------------------------------------------------------------------------------------
# `_sensitive.number` and its twin `_python_number`: the same report for every run of
# digits the scan finds (a kind and a span, or the dotted quad that `_ipv4` judges), and
# `_sensitive.label` the same label as `_label` before any offset.


def _c_number() -> Any:
    _native()
    from sidecar.classifiers import _sensitive

    assert sensitive._native_number is _sensitive.number
    return _sensitive.number


class _Reports(sensitive._Scan):
    """A scan that lists what `_python_number` reports instead of keeping the first of each
    kind."""

    __slots__ = ("reported",)

    def hit(self, kind: str, start: int, end: int) -> None:
        self.reported.append((kind, start, end))


def _runs(scan: sensitive._Scan) -> list[tuple[int, int]]:
    found = scan.digits
    return [
        (found[k], found[k + 1]) for k in range(0, len(found), 3) if found[k + 2] == sensitive._RUN
    ]


def _assert_numbers_equal_the_twin(text: str) -> int:
    """Each run of `text` judged by C and by Python on fresh scans; the number of runs."""
    number = _c_number()
    data = text.encode("utf-8", "surrogatepass")
    runs = _runs(sensitive._Scan(text, data))
    with pytest.MonkeyPatch.context() as patch:
        # `_ipv4` is left to Python by both: what is compared is that both ask for it.
        patch.setattr(
            sensitive,
            "_ipv4",
            lambda scan, start, end, raw: scan.reported.append(("ipv4", start, end)),
        )
        for start, end in runs:
            scan = _Reports(text, data)
            scan.reported = []
            sensitive._python_number(scan, start, end)
            assert len(scan.reported) <= 1
            expected = scan.reported[0] if scan.reported else None
            found = number(scan.b, scan.c, scan.z, start, end)
            assert found == expected, (text, start, end)
    for start, end in runs:  # and the kinds found through `_number`, `_ipv4` included
        with_c, twin = sensitive._Scan(text, data), sensitive._Scan(text, data)
        sensitive._number(with_c, start, end)
        sensitive._python_number(twin, start, end)
        assert with_c.hits == twin.hits, (text, start, end)
    return len(runs)


# Rare shapes, beside those of the examples above.
_NUMBER_EXAMPLES = [
    "tel 555)1234567",  # `)` alone counts as a space
    "born 13/05/1990, due 05/13/1990, on 1990-05-13, not 1990-13-05",
    "NIP 123)456-78-90, 526-000-12-46, 526-00-01-246",  # a `)` stays among the digits
    "62704 Springfield, IL 62704; APO AE 09012; FPO AP \n96601; Town,NY  12345-6789",
    "SSN 078-05-1120, 666-12-3456, 123-00-4567; 078 05 1120",
    "PESEL 44051401359, 44051401358; 0049-30-1234567",
    "IP 52.14.88.201, 10.1.2)01, 192.168.001.010; my IP is 10.0.0.12; at 12.345 678",
    "card 4111-1111-1111-1111, D1234567, CLM-2023-88817, ab12345, 4111 1111 1111 1111x",
]


def _twin_texts(*examples: list[str]) -> list[str]:
    """The dev set's prompts, this file's positives and negatives, and `examples`."""
    texts = [row["messages"][0]["content"] for row in dev_rows()]
    texts += [text for _kind, text in POSITIVES] + NEGATIVES
    for more in examples:
        texts += more
    return texts


def test_native_number_equals_the_python_twin_on_the_dev_set_and_examples() -> None:
    _c_number()
    texts = _twin_texts(_NUMBER_EXAMPLES, [text for text, _found in _REPEATED_CARDS])
    runs = sum(_assert_numbers_equal_the_twin(text) for text in texts)
    assert runs > (250 if dev_rows() else 50)


def _luhn_digit(digits: str) -> str:
    """The digit that makes `digits` + it pass Luhn."""
    for check in "0123456789":
        if sensitive._luhn((digits + check).encode()):
            return check
    raise AssertionError(digits)


def _grouped(digits: str, sizes: list[int], sep: str) -> str:
    """`digits` in groups of `sizes` (what is left in one more), `sep` between them."""
    groups, at = [], 0
    for size in sizes:
        if at < len(digits):
            groups.append(digits[at : at + size])
            at += size
    if at < len(digits):
        groups.append(digits[at:])
    return sep.join(groups)


def _pesel_digits(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=10, max_size=10))
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    check = (10 - sum(w * int(d) for w, d in zip(weights, body, strict=True)) % 10) % 10
    return body + str(check if draw(st.booleans()) else (check + 1) % 10)


def _nip_digits(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=9, max_size=9))
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    check = sum(w * int(d) for w, d in zip(weights, body, strict=True)) % 11
    return body + str(check % 10 if draw(st.booleans()) else draw(st.integers(0, 9)))


_DIGIT = st.text("0123456789", min_size=1, max_size=1)
_SEPARATOR = st.sampled_from([" ", "-", ".", "/", ") ", ")", "-", " "])


@st.composite
def _numbers_of_every_shape(draw: st.DrawFn) -> str:
    shape = draw(st.integers(0, 12))
    if shape == 0:  # groups of any size, any separators
        groups = draw(st.lists(st.text("0123456789", min_size=1, max_size=6), min_size=1))
        text = groups[0]
        for group in groups[1:]:
            text += draw(_SEPARATOR) + group
        return text
    if shape == 1:  # a card: valid or not, an issuer's prefix or not, grouped or not
        prefix = draw(st.sampled_from(["4", "5", "37", "6011", "2221", "2720", "1800", "2131"]))
        prefix += draw(st.sampled_from(["", "9", "0", "1"]))
        size = draw(st.integers(12, 19))
        body = prefix + draw(st.text("0123456789", min_size=size, max_size=size))
        body = body[: size - 1]
        body += _luhn_digit(body) if draw(st.booleans()) else draw(_DIGIT)
        layout = draw(st.sampled_from([[4, 4, 4, 4, 4], [4, 6, 5], [4, 6, 4], [3, 3, 4], [19]]))
        return _grouped(body, layout, draw(st.sampled_from([" ", "-", "", "."])))
    if shape == 2:  # test cards and dummy phones of one or two digits
        a, b = draw(_DIGIT), draw(_DIGIT)
        digits = "".join(draw(st.sampled_from([a, b])) for _ in range(draw(st.integers(5, 20))))
        return _grouped(digits, [4, 4, 4, 4, 4], draw(st.sampled_from([" ", "-", ""])))
    if shape == 3:  # an SSN, in or out of the SSA's ranges
        area = draw(st.sampled_from(["000", "666", "900", "123", "899", "001"]))
        group = draw(st.sampled_from(["00", "45", "01"]))
        serial = draw(st.sampled_from(["0000", "6789", "0001"]))
        return draw(st.sampled_from(["-", " ", ""])).join((area, group, serial))
    if shape == 4:  # a date, or what almost is one
        year = str(draw(st.integers(1700, 2300)))
        month = str(draw(st.integers(0, 14))).zfill(draw(st.integers(1, 2)))
        day = str(draw(st.integers(0, 33))).zfill(draw(st.integers(1, 2)))
        sep = draw(st.sampled_from(["-", "/", ".", " "]))
        return sep.join(draw(st.sampled_from([(year, month, day), (month, day, year)])))
    if shape == 5:  # a PESEL, its checksum right or wrong
        return _pesel_digits(draw)
    if shape == 6:  # a NIP in its dashed layouts
        digits = _nip_digits(draw)
        layout = draw(st.sampled_from([[3, 3, 2, 2], [3, 2, 2, 3]]))
        return _grouped(digits, layout, draw(st.sampled_from(["-", "-", " "])))
    if shape == 7:  # IPv4, public or not, and versions
        octets = draw(st.lists(st.integers(0, 300), min_size=3, max_size=5))
        return ".".join(str(octet) for octet in octets)
    if shape == 8:  # US ZIP codes after a state, military boxes
        place = draw(
            st.sampled_from(["Springfield, IL ", "Town,  NY ", "Town,NY  ", "x, ny ", "A, XX "])
        )
        place = draw(st.sampled_from([place, "APO AE ", "FPO AP \n", "DPO AA", "PSC 12, "]))
        zip_code = draw(st.text("0123456789", min_size=5, max_size=5))
        if draw(st.booleans()):
            zip_code += "-" + draw(st.text("0123456789", min_size=4, max_size=4))
        return place + zip_code
    if shape == 9:  # phones of every format
        return draw(
            st.sampled_from(
                [
                    "+44 20 7946 0958",
                    "+ 1 555 123 4567",
                    "+1234567",
                    "(212) 555-0147",
                    "(212)555-0147",
                    "780-999-2181",
                    "780.999.2181",
                    "1-800-555-0199",
                    "001-541-754-3010",
                    "0049 30 1234567",
                    "0494 92 82 32",
                    "9472 7916",
                    "555-1234",
                    "60-56-85-91",
                    "123 456 789 012 345 678",
                ]
            )
        )
    if shape == 10:  # letters in front: an id
        letters = draw(st.sampled_from(["POL", "D", "CLM-", "ABCDEFGHI", "x", "Ab", "_", "A-"]))
        return letters + draw(st.text("0123456789", min_size=5, max_size=12))
    return draw(st.text("0123456789", min_size=5, max_size=20))  # plain digits


# The words before a number: labels, fillers and tails in several cases, glued together
# or apart, with separators, digits and letters between them.
_LABEL_WORDS = [
    word.replace("_", " ")
    for words in (*sensitive._LABELS.values(), sensitive._FILLERS, sensitive._LABEL_TAILS)
    for word in words.split()
]
_BETWEEN = [
    *(" ", " ", " ", "  ", ":", ": ", " - ", "#", ".", ",", "'", "\n", "\t", "(", "+", "+ "),
    *("=", "/", "é", "ß", "Ж", "中", "x", "A", "Ab", "0", "12", "_", "s", "ex", "no."),
    *("PHONE", "Tel.", "e-mail", "my cellphone", "tax id", "SSN#", "a/c", "nr."),
]
_BEFORE_PIECES = (
    st.sampled_from(_LABEL_WORDS).map(lambda word: word + " ")
    | st.sampled_from(_LABEL_WORDS).map(str.title)
    | st.sampled_from(_LABEL_WORDS)
    | st.sampled_from(_BETWEEN)
)
_AFTER_PIECES = st.sampled_from(["", " ", ".", "a", " b", "-", ")", ", call", "\n", "é", "0"])
_NUMBER_TEXT = st.builds(
    lambda before, number, after: "".join(before) + number + after,
    st.lists(_BEFORE_PIECES, max_size=24),
    _numbers_of_every_shape(),
    _AFTER_PIECES,
)


@settings(max_examples=1500, deadline=None)
@given(_NUMBER_TEXT)
def test_native_number_equals_the_python_twin(text: str) -> None:
    _assert_numbers_equal_the_twin(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NUMBER_TEXT, min_size=2, max_size=5).map(" ".join) | _FRAGMENT_TEXT)
def test_native_number_equals_the_python_twin_among_other_numbers(text: str) -> None:
    _assert_numbers_equal_the_twin(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(_BEFORE_PIECES, max_size=40).map("".join))
def test_native_label_equals_the_python_twin(text: str) -> None:
    # Every offset: windows shorter and longer than 48 bytes, words cut by its edge.
    _native()
    from sidecar.classifiers import _sensitive

    data = text.encode("utf-8", "surrogatepass")
    scan = sensitive._Scan(text, data)
    for start in range(len(data) + 1):
        assert _sensitive.label(scan.z, start) == sensitive._label(scan, start), (text, start)


@pytest.mark.parametrize(
    ("before", "label"),
    [
        ("Phone: ", "phone"),
        ("my number is ", "phone"),
        ("tax id ", None),  # the tail `id` is taken, and `tax` is no label
        ("Tax ID number: ", "nid"),
        ("your cellphone ", "phone"),
        ("cellphone" + " " * 43, "phone"),  # a word cut by the 48-byte edge: "phone" ...
        ("account" + " " * 45, None),  # ... "unt"
        ("account" + " " * 44 + "no ", "phone"),  # a label beyond it is not read
        ("x" * 60 + " phone ", "phone"),
        ("my" + " " * 45 + "card ", "card"),
        ("Social Security: ", "nid"),
        ("PESEL", "nid"),
        ("license ", "dl"),
        ("Policy #", "acct"),
        ("order number ", "other"),
        ("it's my number: ", "phone"),
        ("phones", "phone"),
        ("phonex ", None),
        ("é phone ", "phone"),
        ("", None),
    ],
)
def test_label_reads_the_words_before_a_number(before: str, label: str | None) -> None:
    data = (before + "12345").encode()
    scan = sensitive._Scan(data.decode(), data)
    start = len(before.encode())
    assert sensitive._label(scan, start) == label
    if sensitive._native_scan is not None:  # and its twin in C
        from sidecar.classifiers import _sensitive

        assert _sensitive.label(scan.z, start) == label


def test_native_number_rejects_bad_arguments() -> None:
    number = _c_number()
    from sidecar.classifiers import _sensitive

    scan = sensitive._Scan("call 555-1234 now", None)
    assert number(scan.b, scan.c, scan.z, 5, 13) == ("phone", 5, 13)
    with pytest.raises(TypeError):
        number(scan.b, scan.c, scan.z, 5)
    with pytest.raises(TypeError):
        number("text", scan.c, scan.z, 5, 13)
    with pytest.raises(TypeError):
        number(scan.b, scan.c, scan.z, "5", 13)
    with pytest.raises(ValueError, match="one length"):
        number(scan.b, scan.c, scan.z, -1, 13)
    with pytest.raises(ValueError, match="one length"):
        number(scan.b, scan.c, scan.z[:-1], 5, 13)
    with pytest.raises(ValueError, match="one length"):
        number(scan.b, scan.c, scan.z, 13, 5)
    with pytest.raises(ValueError, match="one length"):
        number(scan.b, scan.c, scan.z, 5, 18)
    with pytest.raises(ValueError, match="digits and separators"):
        number(scan.b, scan.c, scan.z, 4, 13)  # starts at a space
    with pytest.raises(ValueError, match="digits and separators"):
        number(scan.b, scan.c, scan.z, 5, 14)  # ends at one
    with pytest.raises(ValueError, match="digits and separators"):
        number(b"x" * len(scan.b), scan.c, scan.z, 5, 13)  # no digits where `c` has them
    glued = sensitive._Scan("call 555-1234x", None)
    with pytest.raises(ValueError, match="digits and separators"):
        number(glued.b, glued.c, glued.z, 5, 14)  # a letter after a digit
    with pytest.raises(ValueError, match="out of range"):
        _sensitive.label(scan.z, 18)
    with pytest.raises(TypeError):
        _sensitive.label("call", 4)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# `_sensitive.building_number` and its twin `_python_building_number`: the same hit (or
# none) after every building number, and after every other digit too.


def _c_building_number() -> Any:
    _native()
    from sidecar.classifiers import _sensitive

    assert sensitive._native_building_number is _sensitive.building_number
    return _sensitive.building_number


def _building_candidates(scan: sensitive._Scan) -> list[int]:
    """Where `_numbers` asks `_building_number`: the building branch of the digits pass,
    and runs followed by a word."""
    found, c = scan.digits, scan.c
    starts = []
    for k in range(0, len(found), 3):
        start, end, kind = found[k], found[k + 1], found[k + 2]
        if kind == sensitive._BUILDING or (
            kind == sensitive._RUN
            and c[end : end + 1] == b" "
            and c[end + 1 : end + 2] not in (b"", b" ", b"\n")
        ):
            starts.append(start)
    return starts


def _assert_buildings_equal_the_twin(text: str) -> int:
    """C and Python on fresh scans, at each building-number candidate of `text` and at
    every other digit (the patterns read from any of them); the number of candidates."""
    building_number = _c_building_number()
    data = text.encode("utf-8", "surrogatepass")
    scan = sensitive._Scan(text, data)
    candidates = _building_candidates(scan)
    digits = [i for i, byte in enumerate(scan.z) if byte == 0x30]
    for start in [*candidates, *digits, len(data)]:
        scan = _Reports(text, data)
        scan.reported = []
        sensitive._python_building_number(scan, start)
        assert len(scan.reported) <= 1
        expected = scan.reported[0] if scan.reported else None
        assert expected is None or expected[:2] == ("postal_address", start)
        found = building_number(scan.b, scan.c, scan.z, start)
        assert found == (expected[1:] if expected else None), (text, start)
    for start in candidates:  # and the kinds found through `_building_number`
        with_c, twin = sensitive._Scan(text, data), sensitive._Scan(text, data)
        sensitive._building_number(with_c, start)
        sensitive._python_building_number(twin, start)
        assert with_c.hits == twin.hits, (text, start)
    return len(candidates)


# Rare readings, beside the examples above.
_BUILDING_EXAMPLES = [
    "12 345 Main Street; 12 345 Park Avenue; 12/3 Elm St.; 12-4b Oak Lane, 12 3456b Oak Rd",
    "at 12 345 walk, 12 345 Elliott Burgs; 1234567 Main Street; 123456 Main Street",
    "the 1992 Olympic Village, the 2009 Elliott Burgs, the 1992 Main Street, 19a2 Union Mills",
    "1980 Mount St. Helens; 5 St. Mary St. London; 5 Elm St. x; 5 Elm St.\nLondon; 5 Elm st.",
    "5 minutes walk, 7 PM at my place, 12 Timms Drive, 12 TIMMS DRIVE, 12 12 Drive",
    "5 Miła Park; 5 Ünal Way; 5 Λεωφόρος Way; 5 O'Neil's Court, 5 O'Neil Court",
    "12 " + "x" * 30 + " Street, 12 " + "x" * 31 + " Street, 12 a b c d Street, 12 a b c Street",
    "5366 Pivovarská 276, 1912 Sohn 2009, 12 Chapter 3, 12 Foo Bar Baz 5, 12 Foo Bar Baz Qux 5",
    "12 Foo. Bar. 5; 12A Łódź 5; 12 Ärzte 5x; 12 Ärzte 5é; 12/34 Foo 123456; 12 Φ 1; 12 Ж 3",
    "5678 Via Tranquila, 12 Rue Cler, 5, rue de Rivoli, 5 rue de la paix, 12a, via roma",
    "12 via de del della x, 12 Via de, 12 calle  Mayor, 12 улица Ленина, 12 strada",
    "12\tMain\tStreet\n12\x0bMain\x0cStreet 12\r\nMain Street, 12 Main Street)",
]


def test_native_building_number_equals_the_python_twin_on_the_dev_set_and_examples() -> None:
    _c_building_number()
    texts = _twin_texts(_BUILDING_EXAMPLES, _NUMBER_EXAMPLES)
    candidates = sum(_assert_buildings_equal_the_twin(text) for text in texts)
    assert candidates > (250 if dev_rows() else 50)


def _cased(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.title(), word.upper(), word[:1].upper() + word[1:]])


# The words after a building number: street types (ambiguous or not, abbreviated),
# prefixes and their articles, everyday words, names of every script, house numbers and
# years, each in several cases.
_STREET_WORDS = [
    *sensitive._STREET_TYPE_WORDS.split(),
    *sensitive._PREFIX_WORDS.split("|"),
    *sensitive._PREFIX_ARTICLES.split(),
    *sorted(word.decode() for word in sensitive._NOT_STREETS),
]
_AFTER_NUMBER_WORDS = (
    st.sampled_from(_STREET_WORDS).flatmap(_cased)
    | st.sampled_from(_STREET_WORDS).map(lambda word: word + ".")
    | st.sampled_from(
        [
            *("Main", "Elm", "Miła", "Erzsébet", "Λεωφόρος", "Αμπελακίων", "Ленина", "Ünal"),
            *("O'Neil's", "Mc-Kay", "ÉCOLE", "St.", "Mount", "Helens", "minutes", "a", "x"),
            *("1992", "2009", "276", "12A", "42", "5b", "123456", "x" * 30, "x" * 31, "ul."),
        ]
    )
)
_BLANKS = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\x0b", "\x0c", "\r\n", ", ", "."])
_AFTER_WORD = st.sampled_from(["", " ", ".", ",", ";", ":", ")", "!", "-", "\n", "'", "é", "0"])


@st.composite
def _building_texts(draw: st.DrawFn) -> str:
    number = draw(st.text("0123456789", min_size=1, max_size=8))
    number += draw(st.sampled_from(["", "", "a", "B", "é"]))
    if draw(st.booleans()):
        number += draw(st.sampled_from([" ", "/", "-", "  "]))
        number += draw(st.text("0123456789", min_size=1, max_size=7))
        number += draw(st.sampled_from(["", "c", "D"]))
    number += draw(st.sampled_from(["", "", ",", "."]))
    text = draw(st.sampled_from(["", "at ", "x", "1", "$", "Suite ", "\n"])) + number
    for _ in range(draw(st.integers(0, 5))):
        text += draw(_BLANKS) + draw(_AFTER_NUMBER_WORDS)
    return text + draw(_AFTER_WORD) + draw(st.sampled_from(["", " London", " L", "\n12 Main"]))


@settings(max_examples=3000, deadline=None)
@given(_building_texts())
def test_native_building_number_equals_the_python_twin(text: str) -> None:
    _assert_buildings_equal_the_twin(text)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_building_texts(), min_size=2, max_size=5).map(" ".join)
    | st.lists(st.sampled_from(_STREET_FRAGMENTS), max_size=12).map("".join)
    | _FRAGMENT_TEXT
)
def test_native_building_number_equals_the_python_twin_among_other_text(text: str) -> None:
    _assert_buildings_equal_the_twin(text)


def test_building_words_hold_no_byte_that_ends_them() -> None:
    # `_sensitive.building_number` looks a street type up by where the lookahead after it
    # first holds, and a prefix or an article by the first space after it.
    for word in sensitive._spelt(sensitive._STREET_TYPE_WORDS):
        assert re.search(rb"[\s.,;:)]", word) is None, word
    prefixes = sensitive._spelt(sensitive._PREFIX_WORDS.replace("|", " "))
    for word in (*prefixes, *sensitive._spelt(sensitive._PREFIX_ARTICLES)):
        assert b" " not in word, word


def test_native_building_number_rejects_bad_arguments() -> None:
    building_number = _c_building_number()
    scan = sensitive._Scan("at 12 Main Street", None)
    assert building_number(scan.b, scan.c, scan.z, 3) == (3, 17)
    assert building_number(scan.b, scan.c, scan.z, 17) is None  # the end: no number
    assert building_number(scan.b, scan.c, scan.z, 0) is None  # no digit
    with pytest.raises(TypeError):
        building_number(scan.b, scan.c, scan.z)
    with pytest.raises(TypeError):
        building_number("at", scan.c, scan.z, 3)
    with pytest.raises(TypeError):
        building_number(scan.b, scan.c, scan.z, "3")
    with pytest.raises(ValueError, match="one length"):
        building_number(scan.b, scan.c, scan.z, -1)
    with pytest.raises(ValueError, match="one length"):
        building_number(scan.b, scan.c, scan.z, 18)
    with pytest.raises(ValueError, match="one length"):
        building_number(scan.b, scan.c[:-1], scan.z, 3)
