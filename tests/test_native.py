"""The C extensions: built where CI requires them, and equal to their Python twins."""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar import native
from sidecar.classifiers import tokens


def test_every_extension_is_built_where_required() -> None:
    # CI sets SIDECAR_REQUIRE_NATIVE: a compiler problem must fail there, not quietly fall
    # back to the slower twins.
    if not os.environ.get("SIDECAR_REQUIRE_NATIVE"):
        pytest.skip("SIDECAR_REQUIRE_NATIVE is not set")
    for module in native.EXTENSIONS:
        importlib.import_module(module)
    assert all(native.available().values())
    assert native.describe().startswith("native: C extensions in use (")


def test_describe_names_what_runs_in_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(native.EXTENSIONS, "sidecar.classifiers._no_such_module", "a missing one")
    line = native.describe()
    assert line.startswith("native: pure Python for a missing one (")
    assert "tokens classifier" not in line.split("(")[0]


_tokens = pytest.importorskip("sidecar.classifiers._tokens")

# Text of every kind: ASCII, scripts of every UTF-8 length, controls, lone surrogates
# (which JSON allows and `surrogatepass` encodes).
_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=3000) | st.text(
    alphabet="aZ0 \n\t.,#'-éЖ中😀\ud800\udfff", max_size=3000
)


@given(_TEXT)
def test_tokens_counts_equal_the_python_twin(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    args = (data, tokens._WEIGHTS, tokens._FLAGS)
    assert _tokens.counts(*args) == tokens._python_counts(*args)


def test_tokens_counts_past_a_chunk_and_on_any_buffer() -> None:
    data = ("Grüße aus Köln, 12345\n" * 400).encode()
    expected = tokens._python_counts(data, tokens._WEIGHTS, tokens._FLAGS)
    assert _tokens.counts(data, tokens._WEIGHTS, tokens._FLAGS) == expected
    assert _tokens.counts(bytearray(data), tokens._WEIGHTS, tokens._FLAGS) == expected
    assert _tokens.counts(memoryview(data), tokens._WEIGHTS, tokens._FLAGS) == expected


def test_tokens_counts_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="256-byte tables"):
        _tokens.counts(b"abc", b"\x00" * 10, tokens._FLAGS)
    with pytest.raises(TypeError):
        _tokens.counts("abc", tokens._WEIGHTS, tokens._FLAGS)
    with pytest.raises(TypeError):
        _tokens.counts(b"abc", tokens._WEIGHTS)
