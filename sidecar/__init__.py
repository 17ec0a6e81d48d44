"""An LLM routing sidecar. This module is the public API for plugins and embedders."""

from .errors import (
    ConfigError,
    ConfigProblem,
    InvalidRequest,
    ModelNotFound,
    NoTargetAvailable,
    PayloadTooLarge,
    RequestFailed,
    SidecarError,
    UpstreamStatusError,
    UpstreamUnavailable,
)
from .hookspecs import hookimpl
from .provider import (
    Completion,
    Provider,
    ProviderKind,
    StreamChunk,
    Target,
    UpstreamCall,
    Usage,
)
from .record import RequestRecord
from .settings import ProviderSettings, Settings

__version__ = "0.1.0"

__all__ = [
    "Completion",
    "ConfigError",
    "ConfigProblem",
    "InvalidRequest",
    "ModelNotFound",
    "NoTargetAvailable",
    "PayloadTooLarge",
    "Provider",
    "ProviderKind",
    "ProviderSettings",
    "RequestFailed",
    "RequestRecord",
    "Settings",
    "SidecarError",
    "StreamChunk",
    "Target",
    "UpstreamCall",
    "UpstreamStatusError",
    "UpstreamUnavailable",
    "Usage",
    "__version__",
    "hookimpl",
]
