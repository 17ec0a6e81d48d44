"""The plugin manager: built-in plugins, entry points and a plugins directory, each isolated.

Built-in behaviour is itself a list of plugin modules (`DEFAULT_PLUGINS`) registered
through the same hooks as third-party ones. A plugin that fails to import, to register,
or that implements a hook that does not exist (a typo) is recorded as a `PluginFailure`,
logged, shown at `/-/plugins`, and left out; the sidecar serves on without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "sidecar"
DEFAULT_PLUGINS = (
    "sidecar.fallback",
    "sidecar.classifiers.keywords",
    "sidecar.classifiers.sensitive",
    "sidecar.classifiers.task",
    "sidecar.classifiers.tokens",
    "sidecar.providers.anthropic",
    "sidecar.providers.demo",
    "sidecar.providers.gemini",
    "sidecar.providers.openai",
    "sidecar.ledger",
)

logger = logging.getLogger("sidecar.plugins")


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    stage: str
    """import | register | validate | the name of the hook that raised"""
    error: str


@dataclass
class Plugins:
    """The plugins of one app, and what went wrong loading or calling them."""

    manager: pluggy.PluginManager
    sources: dict[str, str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def fail(self, plugin: str, stage: str, exc: BaseException | str) -> None:
        error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.failures.append(PluginFailure(plugin, stage, error))
        logger.error("plugin %s failed at %s: %s", plugin, stage, error)

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of `hook` on its own, so one that raises loses only
        its own result. Returns (plugin name, result) pairs in pluggy's call order."""
        results = []
        for impl in reversed(getattr(self.manager.hook, hook).get_hookimpls()):
            try:
                result = impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception as exc:  # a plugin's bug must not take the sidecar down
                self.fail(impl.plugin_name, hook, exc)
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    async def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin, awaiting what they return; never raises."""
        for plugin, result in self.call_each(hook, **kwargs):
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception as exc:
                    self.fail(plugin, hook, exc)

    def describe(self) -> dict[str, Any]:
        """What `/-/plugins` and `sidecar plugins` show."""
        loaded = []
        for name, plugin in self.manager.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])
            loaded.append(
                {
                    "name": name,
                    "source": self.sources.get(name, "registered"),
                    "version": _version_of(plugin),
                    "hooks": hooks,
                }
            )
        return {
            "plugins": sorted(loaded, key=lambda item: item["name"]),
            "failed": [vars(failure) for failure in self.failures],
            "disabled": sorted(
                name for name, plugin in self.manager.list_name_plugin() if plugin is None
            ),
        }


def load_plugins(
    disabled: Iterable[str] = (),
    plugins_dir: Path | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> Plugins:
    """Build a plugin manager: built-ins, then entry points, then `plugins_dir`, then `extra`
    (objects registered by the embedding program, e.g. tests)."""
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    for name in disabled:
        manager.set_blocked(name)

    for module_name in DEFAULT_PLUGINS:
        _register(plugins, module_name, "built-in", lambda m=module_name: _builtin(m))
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        _register(plugins, entry_point.name, f"entry point {entry_point.value}", entry_point.load)
    if plugins_dir is not None:
        for path in sorted(plugins_dir.glob("*.py")):
            _register(plugins, path.stem, f"file {path}", lambda p=path: _import_file(p))
    for name, obj in extra:
        _register(plugins, name, "registered", lambda o=obj: o)
    _drop_unknown_hooks(plugins)
    manager.check_pending()
    return plugins


def _builtin(module_name: str) -> object:
    """The module, or what its `create_plugin()` returns: a built-in that keeps state gets a
    fresh object per app, so two apps in one process (tests) never share it."""
    module = importlib.import_module(module_name)
    create = getattr(module, "create_plugin", None)
    return create() if callable(create) else module


def _register(plugins: Plugins, name: str, source: str, load: Any) -> None:
    if plugins.manager.is_blocked(name):
        plugins.sources[name] = source
        return
    try:
        plugin = load()
    except Exception as exc:
        plugins.fail(name, "import", exc)
        return
    try:
        plugins.manager.register(plugin, name=name)
    except Exception as exc:
        plugins.fail(name, "register", exc)
        return
    plugins.sources[name] = source


def _drop_unknown_hooks(plugins: Plugins) -> None:
    """`check_pending`, per plugin: a misspelled hook unloads only the plugin that has it."""
    for caller_name, caller in list(vars(plugins.manager.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            plugins.fail(impl.plugin_name, "validate", f"unknown hook {caller_name!r}")
            plugins.manager.unregister(name=impl.plugin_name)


def _import_file(path: Path) -> ModuleType:
    module_name = f"sidecar_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _version_of(plugin: object) -> str | None:
    module = inspect.getmodule(plugin) if not isinstance(plugin, ModuleType) else plugin
    version = getattr(module, "__version__", None)
    return str(version) if version is not None else None
