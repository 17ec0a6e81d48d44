"""Azure OpenAI for llm-sidecar: the provider kind `azure_openai`.

Installed, this package is found through its entry point in the group `sidecar`; a
`providers.<name>` section with `kind: azure_openai` then sends that provider's models
to the Azure deployments they name.
"""

from __future__ import annotations

from sidecar import ProviderKind, hookimpl

from .auth import Credential
from .options import DEFAULT_API_VERSION, KIND, OPTIONS, AzureOptions, validate
from .provider import AzureOpenAIProvider

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_API_VERSION",
    "KIND",
    "AzureOpenAIProvider",
    "AzureOptions",
    "Credential",
    "__version__",
    "register_providers",
]


@hookimpl
def register_providers() -> ProviderKind:
    return ProviderKind(
        KIND, AzureOpenAIProvider, options=OPTIONS, requires_base_url=True, validate=validate
    )
