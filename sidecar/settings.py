"""`sidecar.yaml` -> frozen dataclasses, validated in one pass.

Every problem is collected with the key path it concerns (`tiers.mid[1]: unknown model
'gpt-5x'`) so an operator fixes the whole file in one round trip. Paths inside the file
resolve relative to the file. Secrets are never in the file: a provider names an
environment variable (`api_key_env`) or a file (`api_key_file`), read when it starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .breaker import BreakerSettings
from .errors import ConfigError, ConfigProblem
from .prices import Price, bundled_price

DEFAULT_CONFIG = "sidecar.yaml"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_SHUTDOWN_GRACE = 30.0
RESPONSE_MODEL_MODES = ("upstream", "requested", "model_id")
CEL_ENGINES = ("auto", "native", "python")

T = TypeVar("T")

_C_LOADER = getattr(yaml, "CSafeLoader", None)


def _on_libyaml(parse: Callable[..., T], text: str, python_loader: Any) -> T:
    """`parse(text)` on libyaml where PyYAML has it (~7x faster). On an error the text is
    parsed again in Python, so the message and its position are PyYAML's own."""
    if _C_LOADER is not None:
        try:
            return parse(text, Loader=_C_LOADER)
        except yaml.YAMLError:
            pass
    return parse(text, Loader=python_loader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, on libyaml where PyYAML has it."""
    return _on_libyaml(yaml.load, text, yaml.SafeLoader)


def compose(text: str) -> yaml.Node | None:
    """`yaml.compose` (a node tree with positions), on libyaml where PyYAML has it."""
    return _on_libyaml(yaml.compose, text, yaml.Loader)


@dataclass(frozen=True)
class Timeouts:
    """Upstream timeouts in seconds.

    `first_byte` bounds the wait for a stream's response headers and `idle` the gap between
    two stream chunks. A non-streamed answer only arrives once generated, so it is bounded
    by `total` alone.
    """

    connect: float = 5.0
    first_byte: float = 60.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(frozen=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE
    keepalive_seconds: float = 75.0
    response_model: str = "upstream"


@dataclass(frozen=True)
class UpstreamSettings:
    """The one upstream connection pool shared by every provider."""

    max_connections: int = 256
    max_keepalive_connections: int = 64
    keepalive_expiry: float = 60.0


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    kind: str
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    on_prem: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: Mapping[str, Any] = field(default_factory=dict)

    def api_key(self) -> str | None:
        """The API key, read now from the environment or the file; never stored in config."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ConfigError(
                    [
                        ConfigProblem(
                            f"providers.{self.name}.api_key_env",
                            f"environment variable {self.api_key_env!r} is not set",
                        )
                    ]
                )
            return value
        if self.api_key_file:
            try:
                key = self.api_key_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    [
                        ConfigProblem(
                            f"providers.{self.name}.api_key_file",
                            f"cannot read {self.api_key_file}: {_reason(exc)}",
                        )
                    ]
                ) from None
            if not key:
                raise ConfigError(
                    [
                        ConfigProblem(
                            f"providers.{self.name}.api_key_file", f"{self.api_key_file} is empty"
                        )
                    ]
                )
            return key
        return None


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


@dataclass(frozen=True)
class ModelSettings:
    id: str
    provider: str
    name: str
    price: Price = field(default_factory=Price)
    price_source: str = "config"
    """Where `price` comes from: "config", "plugin <name>" (a `model_price` plugin),
    "bundled" (the list price of a known model) or "none" (costs count as zero)."""


@dataclass(frozen=True)
class RoutingSettings:
    default_tier: str
    policies: Path
    cel_engine: str = "auto"
    max_attempts: int = 3
    """Upstream attempts per request, retries and fallbacks included."""
    deadline_seconds: float = 300.0
    """The whole request, every attempt and wait included (a stream: until its first chunk)."""
    max_retry_wait_seconds: float = 10.0
    """The longest `Retry-After` honoured by waiting; a longer one moves to the next target."""
    sensitive_on_prem_only: bool = True
    """A request the `sensitive` classifier flags only goes to `on_prem` providers."""


@dataclass(frozen=True)
class ClassifierSettings:
    budget_ms: float = 50.0
    """A classifier that takes longer loses its signal for that request. The built-in ones
    take well under a millisecond; the budget catches a pathological one, not a busy core."""
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Named keyword lists: `signals.keywords.<name>` is true when one of them occurs."""


@dataclass(frozen=True)
class PluginSettings:
    disabled: tuple[str, ...] = ()


@dataclass(frozen=True)
class CostSettings:
    baseline_model: str | None = None
    """What each request is compared against for savings; by default the first model of
    the tier named `frontier`, else of the last tier listed."""


@dataclass(frozen=True)
class LedgerSettings:
    enabled: bool = True
    path: Path = Path("sidecar-ledger.db")
    """SQLite file of one row per request (no prompt text); relative to the config file."""
    queue_size: int = 10_000
    """Rows waiting to be written; beyond it, rows are dropped (and counted), never waited on."""
    flush_interval_seconds: float = 1.0
    """The longest a finished request waits before its row is committed."""


@dataclass(frozen=True)
class TelemetrySettings:
    capture_content: bool = False
    """Put prompt and answer text on spans. Off: telemetry holds counts, never text."""
    export_timeout_seconds: float = 2.0
    """The longest shutdown waits for telemetry to flush (a dead collector included)."""


@dataclass(frozen=True)
class Settings:
    path: Path | None
    server: ServerSettings
    upstream: UpstreamSettings
    providers: Mapping[str, ProviderSettings]
    models: Mapping[str, ModelSettings]
    tiers: Mapping[str, tuple[str, ...]]
    routing: RoutingSettings
    plugins: PluginSettings
    classifiers: ClassifierSettings = field(default_factory=ClassifierSettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)

    def tiers_of(self, model_id: str) -> tuple[str, ...]:
        return tuple(name for name, members in self.tiers.items() if model_id in members)


def config_path(explicit: str | None) -> Path:
    """`--config`, else `SIDECAR_CONFIG`, else `./sidecar.yaml`."""
    return Path(explicit or os.environ.get("SIDECAR_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"{path} is not UTF-8 text: {exc.reason}")]) from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            [ConfigProblem("", f"{where}invalid YAML: {problem}")], str(path)
        ) from None
    # absolute(), not resolve(): a ConfigMap mounts the file as a symlink into a hidden
    # `..data` directory, and relative paths must resolve beside the link, not its target.
    base_dir = path.absolute().parent
    return parse_settings({} if data is None else data, base_dir=base_dir, path=path)


def parse_settings(data: object, *, base_dir: Path, path: Path | None = None) -> Settings:
    """Validate a parsed document; raises ConfigError listing every problem."""
    reader = _Reader()
    top = reader.mapping(data, "")
    reader.no_unknown_keys(
        top,
        {
            "server",
            "upstream",
            "providers",
            "models",
            "tiers",
            "routing",
            "classifiers",
            "breaker",
            "plugins",
            "cost",
            "ledger",
            "telemetry",
        },
        "",
    )
    server = _server(reader, reader.mapping(top.get("server", {}), "server"))
    upstream = _upstream(reader, reader.mapping(top.get("upstream", {}), "upstream"))
    providers = _providers(reader, reader.mapping(top.get("providers", {}), "providers"), base_dir)
    models = _models(reader, reader.mapping(top.get("models", {}), "models"), providers)
    tiers = _tiers(reader, reader.mapping(top.get("tiers", {}), "tiers"), models)
    routing = _routing(reader, reader.mapping(top.get("routing", {}), "routing"), tiers, base_dir)
    plugins = _plugins(reader, reader.mapping(top.get("plugins", {}), "plugins"))
    classifiers = _classifiers(reader, reader.mapping(top.get("classifiers", {}), "classifiers"))
    breaker = _breaker(reader, reader.mapping(top.get("breaker", {}), "breaker"))
    cost = _cost(reader, reader.mapping(top.get("cost", {}), "cost"), models, tiers)
    ledger = _ledger(reader, reader.mapping(top.get("ledger", {}), "ledger"), base_dir)
    telemetry = _telemetry(reader, reader.mapping(top.get("telemetry", {}), "telemetry"))
    if reader.problems:
        raise ConfigError(reader.problems, str(path) if path else "")
    return Settings(
        path,
        server,
        upstream,
        providers,
        models,
        tiers,
        routing,
        plugins,
        classifiers,
        breaker,
        cost,
        ledger,
        telemetry,
    )


def _server(r: _Reader, data: Mapping[str, Any]) -> ServerSettings:
    d = ServerSettings()
    r.no_unknown_keys(data, set(ServerSettings.__dataclass_fields__), "server")
    return ServerSettings(
        host=r.get(data, "host", str, d.host, "server"),
        port=r.get(data, "port", int, d.port, "server", check=_port),
        max_body_bytes=r.get(data, "max_body_bytes", int, d.max_body_bytes, "server", _positive),
        shutdown_grace_seconds=r.number(
            data, "shutdown_grace_seconds", d.shutdown_grace_seconds, "server", _not_negative
        ),
        keepalive_seconds=r.number(
            data, "keepalive_seconds", d.keepalive_seconds, "server", _not_negative
        ),
        response_model=r.get(
            data, "response_model", str, d.response_model, "server", _one_of(RESPONSE_MODEL_MODES)
        ),
    )


def _upstream(r: _Reader, data: Mapping[str, Any]) -> UpstreamSettings:
    d = UpstreamSettings()
    r.no_unknown_keys(data, set(UpstreamSettings.__dataclass_fields__), "upstream")
    upstream = UpstreamSettings(
        max_connections=r.get(
            data, "max_connections", int, d.max_connections, "upstream", _positive
        ),
        max_keepalive_connections=r.get(
            data,
            "max_keepalive_connections",
            int,
            d.max_keepalive_connections,
            "upstream",
            _not_negative,
        ),
        keepalive_expiry=r.number(
            data, "keepalive_expiry", d.keepalive_expiry, "upstream", _not_negative
        ),
    )
    if upstream.max_keepalive_connections > upstream.max_connections:
        r.problem(
            "upstream.max_keepalive_connections",
            f"must not exceed max_connections ({upstream.max_connections})",
        )
    return upstream


_PROVIDER_KEYS = {"kind", "base_url", "api_key_env", "api_key_file", "on_prem", "timeouts"}


def _providers(r: _Reader, data: Mapping[str, Any], base_dir: Path) -> dict[str, ProviderSettings]:
    providers = {}
    for name, raw in data.items():
        path = f"providers.{name}"
        section = r.mapping(raw, path)
        kind = r.get(section, "kind", str, None, path)
        if section.get("kind") is None:
            r.problem(f"{path}.kind", "required (for example 'openai')")
        key_env = r.get(section, "api_key_env", str, None, path)
        key_file = r.get(section, "api_key_file", str, None, path)
        if key_env and key_file:
            r.problem(f"{path}.api_key_file", "give api_key_env or api_key_file, not both")
        timeouts_data = r.mapping(section.get("timeouts", {}), f"{path}.timeouts")
        providers[name] = ProviderSettings(
            name=name,
            kind=kind or "",
            base_url=r.get(section, "base_url", str, None, path, _url),
            api_key_env=key_env,
            api_key_file=(base_dir / key_file) if key_file else None,
            on_prem=r.get(section, "on_prem", bool, False, path),
            timeouts=_timeouts(r, timeouts_data, f"{path}.timeouts"),
            # Keys the core does not know belong to the provider kind, which checks them.
            options={k: v for k, v in section.items() if k not in _PROVIDER_KEYS},
        )
    return providers


def _timeouts(r: _Reader, data: Mapping[str, Any], path: str) -> Timeouts:
    d = Timeouts()
    r.no_unknown_keys(data, set(Timeouts.__dataclass_fields__), path)
    return Timeouts(
        connect=r.number(data, "connect", d.connect, path, _positive),
        first_byte=r.number(data, "first_byte", d.first_byte, path, _positive),
        idle=r.number(data, "idle", d.idle, path, _positive),
        total=r.number(data, "total", d.total, path, _positive),
    )


def _models(
    r: _Reader, data: Mapping[str, Any], providers: Mapping[str, ProviderSettings]
) -> dict[str, ModelSettings]:
    models = {}
    for model_id, raw in data.items():
        path = f"models.{model_id}"
        section = r.mapping(raw, path)
        r.no_unknown_keys(section, {"provider", "name", "price"}, path)
        provider = r.get(section, "provider", str, None, path)
        if model_id == "auto":
            r.problem(path, "'auto' is reserved: it means the routing decision")
        if section.get("provider") is None:
            r.problem(f"{path}.provider", "required")
        elif provider is not None and provider not in providers:
            r.problem(f"{path}.provider", f"unknown provider {provider!r}{_known(providers)}")
        name = r.get(section, "name", str, str(model_id), path)
        price, source = _price(r, section.get("price"), name, f"{path}.price")
        models[str(model_id)] = ModelSettings(str(model_id), provider or "", name, price, source)
    return models


def _price(r: _Reader, raw: object, name: str, path: str) -> tuple[Price, str]:
    if raw is None:
        known = bundled_price(name)
        return (known, "bundled") if known else (Price(), "none")
    data = r.mapping(raw, path)
    r.no_unknown_keys(data, {"input", "output", "cached_input", "cache_write"}, path)
    price = Price(
        input=r.number(data, "input", 0.0, path, _not_negative),
        output=r.number(data, "output", 0.0, path, _not_negative),
        cached_input=r.number(data, "cached_input", None, path, _not_negative),
        cache_write=r.number(data, "cache_write", None, path, _not_negative),
    )
    return price, "config"


def _tiers(
    r: _Reader, data: Mapping[str, Any], models: Mapping[str, ModelSettings]
) -> dict[str, tuple[str, ...]]:
    tiers = {}
    for name, raw in data.items():
        path = f"tiers.{name}"
        if name in models:
            r.problem(path, "a tier cannot share its name with a model")
        if name == "auto":
            r.problem(path, "'auto' is reserved: it means the routing decision")
        if not isinstance(raw, list) or not raw:
            r.problem(path, "expected a non-empty list of model ids")
            continue
        for index, member in enumerate(raw):
            if not isinstance(member, str):
                r.problem(f"{path}[{index}]", f"expected a model id, got {_type_name(member)}")
            elif member not in models:
                r.problem(f"{path}[{index}]", f"unknown model {member!r}{_known(models)}")
            elif member in raw[:index]:
                r.problem(f"{path}[{index}]", f"model {member!r} is listed twice")
        tiers[str(name)] = tuple(str(member) for member in raw)
    return tiers


def _routing(
    r: _Reader, data: Mapping[str, Any], tiers: Mapping[str, tuple[str, ...]], base_dir: Path
) -> RoutingSettings:
    r.no_unknown_keys(data, set(RoutingSettings.__dataclass_fields__), "routing")
    default_tier = r.get(data, "default_tier", str, None, "routing")
    if default_tier is None:
        if tiers:
            r.problem("routing.default_tier", f"required{_known(tiers)}")
        else:
            r.problem("tiers", "at least one tier is required")
    elif default_tier not in tiers:
        r.problem("routing.default_tier", f"unknown tier {default_tier!r}{_known(tiers)}")
    policies = r.get(data, "policies", str, "policies", "routing")
    engine = r.get(data, "cel_engine", str, "auto", "routing", _one_of(CEL_ENGINES))
    d = RoutingSettings("", base_dir)
    return RoutingSettings(
        default_tier or "",
        base_dir / policies,
        engine,
        max_attempts=r.get(data, "max_attempts", int, d.max_attempts, "routing", _positive),
        deadline_seconds=r.number(
            data, "deadline_seconds", d.deadline_seconds, "routing", _positive
        ),
        max_retry_wait_seconds=r.number(
            data, "max_retry_wait_seconds", d.max_retry_wait_seconds, "routing", _not_negative
        ),
        sensitive_on_prem_only=r.get(
            data, "sensitive_on_prem_only", bool, d.sensitive_on_prem_only, "routing"
        ),
    )


def _classifiers(r: _Reader, data: Mapping[str, Any]) -> ClassifierSettings:
    r.no_unknown_keys(data, {"budget_ms", "keywords"}, "classifiers")
    budget = r.number(data, "budget_ms", ClassifierSettings.budget_ms, "classifiers", _positive)
    lists = r.mapping(data.get("keywords", {}), "classifiers.keywords")
    keywords = {}
    for name, words in lists.items():
        path = f"classifiers.keywords.{name}"
        if not name.isidentifier():
            r.problem(path, "a keyword list's name must be an identifier (letters, digits, _)")
        elif not isinstance(words, list) or not words:
            r.problem(path, "expected a non-empty list of words or phrases")
        elif not all(isinstance(word, str) and word.strip() for word in words):
            r.problem(path, "every entry must be a non-empty string")
        else:
            keywords[name] = tuple(word.strip() for word in words)
    return ClassifierSettings(budget, keywords)


def _breaker(r: _Reader, data: Mapping[str, Any]) -> BreakerSettings:
    d = BreakerSettings()
    r.no_unknown_keys(data, set(BreakerSettings.__dataclass_fields__), "breaker")
    rate = r.number(data, "failure_rate", d.failure_rate, "breaker", _fraction)
    return BreakerSettings(
        failure_threshold=r.get(
            data, "failure_threshold", int, d.failure_threshold, "breaker", _positive
        ),
        failure_rate=rate,
        window=r.get(data, "window", int, d.window, "breaker", _positive),
        min_samples=r.get(data, "min_samples", int, d.min_samples, "breaker", _positive),
        cooldown_seconds=r.number(
            data, "cooldown_seconds", d.cooldown_seconds, "breaker", _not_negative
        ),
    )


def _fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "expected a number above 0 and at most 1"


def _cost(
    r: _Reader,
    data: Mapping[str, Any],
    models: Mapping[str, ModelSettings],
    tiers: Mapping[str, tuple[str, ...]],
) -> CostSettings:
    r.no_unknown_keys(data, {"baseline_model"}, "cost")
    baseline = r.get(data, "baseline_model", str, None, "cost")
    if baseline is not None and baseline not in models:
        r.problem("cost.baseline_model", f"unknown model {baseline!r}{_known(models)}")
        baseline = None
    if baseline is None:
        members = tiers.get("frontier") or (list(tiers.values())[-1] if tiers else ())
        baseline = members[0] if members else None
    return CostSettings(baseline)


def _ledger(r: _Reader, data: Mapping[str, Any], base_dir: Path) -> LedgerSettings:
    r.no_unknown_keys(data, set(LedgerSettings.__dataclass_fields__), "ledger")
    d = LedgerSettings()
    path = r.get(data, "path", str, str(d.path), "ledger", _not_empty)
    return LedgerSettings(
        enabled=r.get(data, "enabled", bool, d.enabled, "ledger"),
        path=base_dir / os.path.expanduser(path),
        queue_size=r.get(data, "queue_size", int, d.queue_size, "ledger", _positive),
        flush_interval_seconds=r.number(
            data, "flush_interval_seconds", d.flush_interval_seconds, "ledger", _positive
        ),
    )


def _telemetry(r: _Reader, data: Mapping[str, Any]) -> TelemetrySettings:
    r.no_unknown_keys(data, set(TelemetrySettings.__dataclass_fields__), "telemetry")
    d = TelemetrySettings()
    return TelemetrySettings(
        capture_content=r.get(data, "capture_content", bool, d.capture_content, "telemetry"),
        export_timeout_seconds=r.number(
            data, "export_timeout_seconds", d.export_timeout_seconds, "telemetry", _positive
        ),
    )


def _plugins(r: _Reader, data: Mapping[str, Any]) -> PluginSettings:
    r.no_unknown_keys(data, {"disabled"}, "plugins")
    disabled = data.get("disabled") or []
    if not isinstance(disabled, list) or not all(isinstance(n, str) for n in disabled):
        r.problem("plugins.disabled", "expected a list of plugin names")
        disabled = []
    return PluginSettings(tuple(disabled))


class _Reader:
    """Reads values out of untrusted mappings, recording a problem instead of raising."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message))

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(path, f"expected a mapping, got {_type_name(value)}")
            return {}
        return {str(k): v for k, v in value.items()}

    def no_unknown_keys(self, data: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                self.problem(
                    _join(path, key), f"unknown key (expected one of: {', '.join(sorted(allowed))})"
                )

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        kind: type[T],
        default: Any,
        path: str,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        if key not in data or data[key] is None:
            return default
        value = data[key]
        # bool is an int in Python; a port of `true` is still a mistake.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(_join(path, key), f"expected {kind.__name__}, got {_type_name(value)}")
            return default
        message = check(value) if check else None
        if message:
            self.problem(_join(path, key), message)
            return default
        return value

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        default: Any,
        path: str,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            data = {key: float(value)}
        return self.get(data, key, float, default, path, check)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: object) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _known(names: Mapping[str, Any]) -> str:
    return f" (known: {', '.join(sorted(names))})" if names else ""


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "expected a port number from 0 to 65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _url(value: str) -> str | None:
    return None if value.startswith(("http://", "https://")) else "expected an http(s):// URL"


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"expected one of: {', '.join(choices)}"

    return check
