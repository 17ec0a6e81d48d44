"""The `sidecar` command: serve | check | plugins."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import ConfigError
from .plugins import Plugins, load_plugins
from .runtime import build_runtime, check_providers, provider_kinds
from .settings import Settings, config_path, load_settings

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidecar", description="LLM routing sidecar")
    parser.add_argument("--version", action="version", version=f"sidecar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the OpenAI-compatible API")
    _common(serve)
    serve.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: server.port, 8787)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log every request line")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="validate the configuration without serving")
    _common(check)
    check.set_defaults(run=_check)

    plugins = commands.add_parser("plugins", help="list loaded plugins and their hooks")
    _common(plugins)
    plugins.add_argument("--format", choices=["table", "json"], default="table")
    plugins.set_defaults(run=_plugins)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="configuration file (default: $SIDECAR_CONFIG, else ./sidecar.yaml)"
    )
    parser.add_argument("--plugins-dir", type=Path, help="load every *.py in DIR as a plugin")


def _load(args: argparse.Namespace) -> tuple[Settings, Plugins]:
    settings = load_settings(config_path(args.config))
    plugins = load_plugins(settings.plugins.disabled, args.plugins_dir)
    return settings, plugins


def _serve(args: argparse.Namespace) -> int:
    from .server import serve  # uvicorn is only needed here

    settings, plugins = _load(args)
    runtime = build_runtime(settings, plugins)
    serve(
        runtime,
        args.host or settings.server.host,
        args.port if args.port is not None else settings.server.port,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    settings, plugins = _load(args)
    problems, warnings = check_providers(settings, provider_kinds(plugins))
    for warning in warnings:
        print(f"warning: {warning} (serve will refuse to start)", file=sys.stderr)
    for failure in plugins.failures:
        print(
            f"warning: plugin {failure.plugin} failed at {failure.stage}: {failure.error}",
            file=sys.stderr,
        )
    if problems:
        raise ConfigError(problems, str(settings.path))
    print(
        f"{settings.path}: ok ({len(settings.providers)} providers, {len(settings.models)} models, "
        f"{len(settings.tiers)} tiers)"
    )
    return 0


def _plugins(args: argparse.Namespace) -> int:
    _, plugins = _load(args)
    provider_kinds(plugins)  # calling the hook surfaces plugins that fail in it
    described = plugins.describe()
    if args.format == "json":
        print(json.dumps(described, indent=2))
        return 0
    for plugin in described["plugins"]:
        version = f" {plugin['version']}" if plugin["version"] else ""
        print(f"{plugin['name']}{version}  ({plugin['source']})")
        print(f"    hooks: {', '.join(plugin['hooks']) or '-'}")
    for name in described["disabled"]:
        print(f"{name}  (disabled)")
    for failure in described["failed"]:
        print(f"{failure['plugin']}  FAILED at {failure['stage']}: {failure['error']}")
    return 1 if described["failed"] else 0
