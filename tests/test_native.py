"""The C extensions: built where CI requires them, and equal to their Python twins."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

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
    if native.disabled():
        pytest.skip("SIDECAR_PURE_PYTHON is set")
    for module in native.EXTENSIONS:
        importlib.import_module(module)
    assert all(native.available().values())
    assert native.describe().startswith("native: C extensions in use (")


def test_describe_names_what_runs_in_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.PURE_PYTHON, raising=False)
    monkeypatch.setitem(native.EXTENSIONS, "sidecar.classifiers._no_such_module", "a missing one")
    line = native.describe()
    assert line.startswith("native: pure Python for a missing one (")
    assert "tokens classifier" not in line.split("(")[0]


@pytest.mark.parametrize(
    ("value", "disabled"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_sidecar_pure_python_turns_every_extension_off(
    monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool
) -> None:
    monkeypatch.setenv(native.PURE_PYTHON, value)
    assert native.disabled() is disabled
    if disabled:
        assert not any(native.available().values())
        assert native.describe() == "native: pure Python for all (SIDECAR_PURE_PYTHON is set)"


def test_modules_take_their_twins_under_sidecar_pure_python() -> None:
    # A fresh interpreter: the choice is made once, when each module is imported.
    probe = (
        "from sidecar.classifiers import sensitive, task, tokens\n"
        "from sidecar.telemetry import protobuf\n"
        "print(tokens._counts is tokens._python_counts,"
        " protobuf.encode_span is protobuf._python_encode_span,"
        " task._scan is task._python_scan, sensitive._native_scan is None)"
    )
    env = {**os.environ, native.PURE_PYTHON: "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True"] * 4


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
