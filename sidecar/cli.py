"""The `sidecar` command: serve | check | explain | test | eval | plugins | report."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__, native
from .cel import CelError
from .cost import price_models
from .errors import ConfigError, InvalidRequest
from .evaluation import DEFAULT_OUTPUT_TOKENS, evaluate, read_rows
from .evaluation import render as render_report
from .explain import chat_request, explain, load_cases, render, run_case
from .ledger import LedgerError
from .plugins import Plugins, load_plugins
from .policies import PolicyError
from .report import DEFAULT_SINCE, parse_since, summarize
from .report import render as render_usage
from .routing import PolicyRouter
from .runtime import build_router, build_runtime, check_providers, provider_kinds
from .settings import Settings, config_path, load_settings
from .telemetry import from_environment
from .telemetry.export import describe, exporters_from_environment

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
    except (ConfigError, PolicyError, CelError) as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except InvalidRequest as exc:
        print(f"sidecar: {exc.message}", file=sys.stderr)
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

    check = commands.add_parser(
        "check", help="validate the configuration and the policies without serving"
    )
    _common(check)
    check.add_argument("--policies", type=Path, help="policy directory (default: routing.policies)")
    check.set_defaults(run=_check)

    explain = commands.add_parser(
        "explain", help="show how a request would be routed, without calling a provider"
    )
    _common(explain)
    given = explain.add_mutually_exclusive_group(required=True)
    given.add_argument("--prompt", help="a user prompt (sent as model 'auto')")
    given.add_argument("--request", type=Path, help="a chat completions request body (JSON)")
    explain.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="a request header"
    )
    explain.add_argument("--format", choices=["text", "json"], default="text")
    explain.set_defaults(run=_explain)

    test = commands.add_parser("test", help="run policy test cases (exit status 1 if any fails)")
    _common(test)
    test.add_argument("cases", type=Path, nargs="+", help="YAML files of cases")
    test.set_defaults(run=_test)

    evaluate = commands.add_parser(
        "eval", help="measure routing on labelled prompts (JSONL): tiers, sensitive data, cost"
    )
    _common(evaluate)
    evaluate.add_argument("data", type=Path, help="JSONL rows: messages, expected_tier, sensitive")
    evaluate.add_argument("--format", choices=["table", "json"], default="table")
    evaluate.add_argument(
        "--output-tokens",
        type=int,
        default=DEFAULT_OUTPUT_TOKENS,
        help=f"assumed answer length for the projected cost (default {DEFAULT_OUTPUT_TOKENS})",
    )
    evaluate.add_argument(
        "--misses", action="store_true", help="list the rows routed differently from their label"
    )
    evaluate.set_defaults(run=_eval)

    plugins = commands.add_parser("plugins", help="list loaded plugins and their hooks")
    _common(plugins)
    plugins.add_argument("--format", choices=["table", "json"], default="table")
    plugins.set_defaults(run=_plugins)

    report = commands.add_parser(
        "report", help="requests, tokens, cost and savings per tier, from the usage ledger"
    )
    report.add_argument(
        "--config", help="configuration file (default: $SIDECAR_CONFIG, else ./sidecar.yaml)"
    )
    report.add_argument(
        "--ledger", type=Path, help="ledger file (default: ledger.path of the configuration)"
    )
    report.add_argument(
        "--since",
        type=_since,
        default=DEFAULT_SINCE,
        help=f"30m, 24h, 7d, an ISO 8601 time (UTC by default) or 'all' (default {DEFAULT_SINCE})",
    )
    report.add_argument("--format", choices=["table", "json"], default="table")
    report.set_defaults(run=_report)
    return parser


def _since(text: str) -> float | None:
    try:
        return parse_since(text, time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="configuration file (default: $SIDECAR_CONFIG, else ./sidecar.yaml)"
    )
    parser.add_argument("--plugins-dir", type=Path, help="load every *.py in DIR as a plugin")


def _load(args: argparse.Namespace, *, priced: bool = True) -> tuple[Settings, Plugins]:
    """Settings and plugins; `priced`: with the `model_price` plugins' prices applied
    (`build_runtime` applies them itself)."""
    settings = load_settings(config_path(args.config))
    plugins = load_plugins(settings.plugins.disabled, args.plugins_dir)
    return (price_models(settings, plugins) if priced else settings), plugins


def _serve(args: argparse.Namespace) -> int:
    from .server import serve  # uvicorn is only needed here

    settings, plugins = _load(args, priced=False)
    runtime = build_runtime(settings, plugins)
    runtime.telemetry = from_environment(runtime.settings, runtime.router)
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
    if args.policies is not None:
        routing = dataclasses.replace(settings.routing, policies=args.policies)
        settings = dataclasses.replace(settings, routing=routing)
    problems, warnings = check_providers(settings, provider_kinds(plugins))
    for warning in warnings:
        print(f"warning: {warning} (serve will refuse to start)", file=sys.stderr)
    for failure in plugins.failures:
        print(
            f"warning: plugin {failure.plugin} failed at {failure.stage}: {failure.error}",
            file=sys.stderr,
        )
    for model in settings.models.values():
        provider = settings.providers.get(model.provider)
        if model.price_source == "none" and not (provider and provider.on_prem):
            print(
                f"warning: models.{model.id}.price: not configured, and {model.name!r} is not "
                "a model with a known list price: its requests count as free in cost and "
                "savings",
                file=sys.stderr,
            )
    if problems:
        raise ConfigError(problems, str(settings.path))
    router = build_router(settings, plugins)
    policy_set = router.store.current
    for policy_warning in policy_set.warnings:
        print(f"warning: {policy_warning}", file=sys.stderr)
    print(
        f"{settings.path}: ok ({len(settings.providers)} providers, {len(settings.models)} models, "
        f"{len(settings.tiers)} tiers)"
    )
    print(
        f"{settings.routing.policies}: ok ({len(policy_set.policies)} policies, "
        f"version {policy_set.version}, {policy_set.engine} CEL engine)"
    )
    # The OTEL_* variables as `serve` reads them: a wrong one raises ConfigError naming it.
    exporters = exporters_from_environment()
    print(f"telemetry: {describe(exporters)}")
    for exporter in (*exporters.spans, *exporters.metrics) if exporters else ():
        exporter.shutdown()
    print(native.describe())
    return 0


def _explain(args: argparse.Namespace) -> int:
    settings, plugins = _load(args)
    router = build_router(settings, plugins)
    if args.request is not None:
        body = json.loads(args.request.read_text(encoding="utf-8"))
        request = chat_request(body=body)
    else:
        request = chat_request(args.prompt)
    headers = {}
    for header in args.header:
        name, separator, value = header.partition("=")
        if not separator:
            raise InvalidRequest(f"--header {header!r}: expected NAME=VALUE")
        headers[name.strip().lower()] = value
    explanation = explain(router, request, headers)
    print(json.dumps(explanation, indent=2) if args.format == "json" else render(explanation))
    return 0


def _offline_router(args: argparse.Namespace) -> PolicyRouter:
    """A router for offline tools: no classifier time budget, so results never depend on
    how busy the machine is."""
    settings, plugins = _load(args)
    router = build_router(settings, plugins)
    router.signals.budget_s = math.inf
    return router


def _test(args: argparse.Namespace) -> int:
    router = _offline_router(args)
    failed = total = 0
    for path in args.cases:
        for index, case in enumerate(load_cases(path)):
            result = run_case(router, case, index)
            total += 1
            if result.passed:
                print(f"PASS {path.name}: {result.name}")
                continue
            failed += 1
            print(f"FAIL {path.name}: {result.name}")
            for difference in result.differences:
                print(f"     {difference}")
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


def _eval(args: argparse.Namespace) -> int:
    router = _offline_router(args)
    report = evaluate(router, read_rows(args.data), args.output_tokens)
    if args.format == "json":
        print(json.dumps(report.as_json(), indent=2))
        return 0
    print(render_report(report))
    if args.misses:
        print("\nmisses:")
        for miss in report.misses:
            print(
                f"  {miss['id']}: {miss['task_type']} expected {miss['expected']}, "
                f"routed {miss['routed']} ({miss['policy'] or 'default tier'})"
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


def _report(args: argparse.Namespace) -> int:
    path = args.ledger or load_settings(config_path(args.config)).ledger.path
    try:
        summary = summarize(path, args.since)
    except LedgerError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if args.format == "json" else render_usage(summary))
    return 0
