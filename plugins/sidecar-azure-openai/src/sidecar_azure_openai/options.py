"""The `providers.<name>` section of kind `azure_openai`: checked, and turned into URLs.

Azure serves chat completions at two kinds of address. Dated API versions put the
deployment in the path and the version in the query:
`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21`.
The v1 API (`api_version: v1`) has one address for every deployment and takes the
deployment as `model` in the body: `{endpoint}/openai/v1/chat/completions`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sidecar import ConfigError, ConfigProblem, ProviderSettings

KIND = "azure_openai"
DEFAULT_API_VERSION = "2024-10-21"
V1 = "v1"
OLDEST_API_VERSION = "2024-09-01"
"""The first dated version that accepts `stream_options`, which the core sends with every
stream to learn its usage."""
API_KEY = "api_key"
ENTRA_ID = "entra_id"
AUTH_MODES = (API_KEY, ENTRA_ID)
OPTIONS = frozenset({"api_version", "auth"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})(-preview)?")


@dataclass(frozen=True)
class AzureOptions:
    """A checked section: where to send requests and how to authenticate."""

    endpoint: str
    """`base_url` without a trailing slash: the resource endpoint (or a gateway in front)."""
    api_version: str = DEFAULT_API_VERSION
    auth: str = API_KEY

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> AzureOptions:
        """Raises ConfigError listing every problem of the section."""
        problems = validate(settings)
        if not settings.base_url:
            path = f"providers.{settings.name}.base_url"
            problems.insert(0, ConfigProblem(path, f"required for kind {KIND!r}"))
        if problems:
            raise ConfigError(problems)
        return cls(
            endpoint=(settings.base_url or "").rstrip("/"),
            api_version=str(_api_version(settings)),
            auth=settings.options.get("auth", API_KEY),
        )

    @property
    def per_deployment(self) -> bool:
        """Whether each deployment has its own URL (dated versions) or all share one (v1)."""
        return self.api_version != V1

    def chat_url(self, deployment: str) -> str:
        if not self.per_deployment:
            return f"{self.endpoint}/openai/v1/chat/completions"
        return (
            f"{self.endpoint}/openai/deployments/{quote(deployment, safe='')}"
            f"/chat/completions?api-version={self.api_version}"
        )


def validate(settings: ProviderSettings) -> list[ConfigProblem]:
    """The problems of a `providers.<name>` section of kind `azure_openai`.

    A missing `base_url` is reported by the core (the kind requires one)."""
    path = f"providers.{settings.name}"
    problems = []
    if settings.base_url:
        message = _endpoint_problem(settings.base_url)
        if message:
            problems.append(ConfigProblem(f"{path}.base_url", message))
    message = _api_version_problem(_api_version(settings))
    if message:
        problems.append(ConfigProblem(f"{path}.api_version", message))
    auth = settings.options.get("auth", API_KEY)
    if auth not in AUTH_MODES:
        problems.append(
            ConfigProblem(f"{path}.auth", f"expected one of: {', '.join(AUTH_MODES)}, got {auth!r}")
        )
    if not settings.api_key_env and not settings.api_key_file:
        what = "an Entra ID token" if auth == ENTRA_ID else "an API key"
        problems.append(
            ConfigProblem(
                f"{path}.api_key_env",
                f"kind {KIND!r} needs {what}: give api_key_env or api_key_file",
            )
        )
    return problems


def _api_version(settings: ProviderSettings) -> object:
    version = settings.options.get("api_version", DEFAULT_API_VERSION)
    # YAML reads an unquoted 2024-10-21 as a date.
    return version.isoformat() if isinstance(version, datetime.date) else version


def _endpoint_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
        return (
            "expected an https:// URL such as https://<resource>.openai.azure.com "
            "(http only for a loopback address)"
        )
    if parts.query or parts.fragment:
        return "expected the resource endpoint, without a query or fragment"
    if re.search(r"/openai(/|$)", parts.path):
        return (
            "expected the resource endpoint, such as https://<resource>.openai.azure.com: "
            "the sidecar adds /openai/... itself"
        )
    return None


def _api_version_problem(version: object) -> str | None:
    if version == V1:
        return None
    if not isinstance(version, str):
        return f"expected a string such as {DEFAULT_API_VERSION!r} or {V1!r}"
    match = _DATED.fullmatch(version)
    if match is None or not _is_date(match.group(1)):
        return (
            f"expected {V1!r} or a dated version such as {DEFAULT_API_VERSION!r} "
            f"or '2025-04-01-preview', got {version!r}"
        )
    if match.group(1) < OLDEST_API_VERSION:
        return (
            f"{version!r} predates stream usage (stream_options), which the sidecar asks "
            f"for on every stream: use {OLDEST_API_VERSION}-preview or later, "
            f"e.g. {DEFAULT_API_VERSION!r}"
        )
    return None


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True
