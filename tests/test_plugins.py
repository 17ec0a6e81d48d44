"""Plugin loading and calling: built-ins, entry points, a plugins directory, isolation."""

from __future__ import annotations

import asyncio
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from sidecar import ProviderKind, hookimpl
from sidecar.plugins import DEFAULT_PLUGINS, load_plugins
from sidecar.runtime import provider_kinds

GOOD_PLUGIN = """
from sidecar import hookimpl

@hookimpl
def startup(settings):
    pass
"""
BROKEN_IMPORT = "import module_that_does_not_exist\n"
MISSPELLED_HOOK = """
from sidecar import hookimpl

@hookimpl
def request_finnished(record):
    pass
"""
WRONG_ARGUMENT = """
from sidecar import hookimpl

@hookimpl
def request_finished(record, extra_argument):
    pass
"""


def write_plugins(directory: Path, **files: str) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.py").write_text(text)
    return directory


BUILTIN_KINDS = {"anthropic", "demo", "gemini", "openai"}


def _installed_kinds() -> set[str]:
    """Kinds from plugin packages installed beside the sidecar (CI installs one)."""
    return set(provider_kinds(load_plugins())) - BUILTIN_KINDS


def test_builtins_are_registered() -> None:
    plugins = load_plugins()
    described = plugins.describe()
    builtins = [p for p in described["plugins"] if p["source"] == "built-in"]
    assert [p["name"] for p in builtins] == sorted(DEFAULT_PLUGINS)
    assert all(
        p["source"].startswith("entry point ") for p in described["plugins"] if p not in builtins
    )
    assert set(provider_kinds(plugins)) >= BUILTIN_KINDS
    assert described["failed"] == []


def test_plugins_dir_loads_good_plugins_and_isolates_broken_ones(tmp_path: Path) -> None:
    directory = write_plugins(
        tmp_path / "plugins",
        good=GOOD_PLUGIN,
        broken=BROKEN_IMPORT,
        typo=MISSPELLED_HOOK,
        wrong=WRONG_ARGUMENT,
    )
    plugins = load_plugins(plugins_dir=directory)
    described = plugins.describe()
    names = [p["name"] for p in described["plugins"]]
    assert "good" in names
    assert not {"broken", "typo", "wrong"} & set(names)
    failures = {f["plugin"]: (f["stage"], f["error"]) for f in described["failed"]}
    assert failures["broken"][0] == "import"
    assert "module_that_does_not_exist" in failures["broken"][1]
    assert failures["typo"] == ("validate", "unknown hook 'request_finnished'")
    assert failures["wrong"][0] == "register"
    assert "extra_argument" in failures["wrong"][1]


def test_plugin_can_be_disabled_by_name(tmp_path: Path) -> None:
    directory = write_plugins(tmp_path / "plugins", good=GOOD_PLUGIN)
    plugins = load_plugins(disabled=["good", "sidecar.providers.demo"], plugins_dir=directory)
    described = plugins.describe()
    assert described["disabled"] == ["good", "sidecar.providers.demo"]
    assert "demo" not in provider_kinds(plugins)
    assert "good" not in [p["name"] for p in described["plugins"]]


def test_entry_point_plugins_are_loaded_in_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    good = EntryPoint("extra", "sidecar.providers.demo", "sidecar")
    broken = EntryPoint("broken", "no_such_module_anywhere", "sidecar")

    def fake_entry_points(group: str) -> list[EntryPoint]:
        assert group == "sidecar"
        return [good, broken]

    monkeypatch.setattr("sidecar.plugins.entry_points", fake_entry_points)
    described = load_plugins().describe()
    # The same module object cannot be registered twice: that is reported, not fatal.
    failures = {f["plugin"]: f["stage"] for f in described["failed"]}
    assert failures == {"extra": "register", "broken": "import"}


def test_a_raising_hook_loses_only_its_own_result() -> None:
    class Raises:
        @hookimpl
        def register_providers(self) -> ProviderKind:
            raise RuntimeError("boom")

    plugins = load_plugins(extra=[("raises", Raises())])
    kinds = provider_kinds(plugins)
    assert set(kinds) == BUILTIN_KINDS | _installed_kinds()
    (failure,) = plugins.failures
    assert (failure.plugin, failure.stage, failure.error) == (
        "raises",
        "register_providers",
        "RuntimeError: boom",
    )


def test_a_plugin_kind_overrides_the_builtin_of_the_same_name() -> None:
    class Replacement:
        @hookimpl
        def register_providers(self) -> list[ProviderKind]:
            return [ProviderKind("openai", factory=lambda s, c: None)]  # type: ignore[arg-type,return-value]

    kinds = provider_kinds(load_plugins(extra=[("replacement", Replacement())]))
    assert kinds["openai"].factory(None, None) is None  # type: ignore[arg-type]


def test_notify_awaits_coroutines_and_swallows_errors() -> None:
    seen = []

    class Observer:
        @hookimpl
        async def request_finished(self, record: object) -> None:
            seen.append(record)

    class Failing:
        @hookimpl
        async def request_finished(self, record: object) -> None:
            raise ValueError("observer bug")

    plugins = load_plugins(extra=[("observer", Observer()), ("failing", Failing())])
    asyncio.run(plugins.notify("request_finished", record="r"))
    assert seen == ["r"]
    assert [(f.plugin, f.error) for f in plugins.failures] == [
        ("failing", "ValueError: observer bug")
    ]


def test_hook_implementations_may_take_fewer_arguments() -> None:
    calls = []

    class NoArguments:
        @hookimpl
        def request_finished(self) -> None:
            calls.append(True)

    plugins = load_plugins(extra=[("lean", NoArguments())])
    asyncio.run(plugins.notify("request_finished", record="ignored"))
    assert calls == [True]
