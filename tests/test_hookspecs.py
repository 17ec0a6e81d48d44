"""The hooks contract: every hook documented, tested, and in the README."""

from __future__ import annotations

import inspect
import re

import pytest

from sidecar import hookspecs

from .support import REPO

HOOKS = sorted(
    name
    for name, function in vars(hookspecs).items()
    if inspect.isfunction(function) and hasattr(function, "sidecar_spec")
)
TEST_SOURCES = "\n".join(path.read_text() for path in (REPO / "tests").rglob("test_*.py"))


def test_there_are_hooks() -> None:
    assert "register_providers" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc is not None
    assert len(doc) > 80, f"{hook} needs a docstring saying when it runs and what it returns"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook: str) -> None:
    assert re.search(rf"def test_hook_{hook}\b|def test_hook_\w*{hook}", TEST_SOURCES), (
        f"add a test named test_hook_{hook}"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_in_the_readme(hook: str) -> None:
    assert f"`{hook}" in (REPO / "README.md").read_text()


def test_readme_hooks_reference_is_generated_from_the_docstrings() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "hooks_reference", REPO / "tools" / "hooks_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (REPO / "README.md").read_text()
    assert module.render(text) == text, "run: python tools/hooks_reference.py"
