"""Every hook the sidecar calls. These docstrings are the hooks reference.

Hooks are called with keyword arguments, so an implementation may accept fewer arguments
than the spec lists, and hooks can grow arguments without breaking plugins. pluggy is
synchronous: hooks that may do I/O (`startup`, `shutdown`, `request_finished`) may return
an awaitable, which the sidecar awaits. Per-request work lives in the objects that the
`register_*` hooks return.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from .classifier import Classifier
from .errors import RequestFailed
from .prices import Price
from .provider import ProviderKind, Target
from .record import RequestRecord
from .settings import ModelSettings, ProviderSettings, Settings

if TYPE_CHECKING:
    from .routing import Decision

hookspec = pluggy.HookspecMarker("sidecar")
hookimpl = pluggy.HookimplMarker("sidecar")


@hookspec
def register_providers() -> Iterable[ProviderKind] | ProviderKind | None:
    """Contribute provider kinds.

    Called once at start-up. Return a `ProviderKind` or a list of them; its `name` is the
    value of `kind:` in a `providers.<name>` section of sidecar.yaml. A kind registered by
    a later plugin replaces a built-in kind of the same name (built-ins are `trylast`).
    """


@hookspec
def register_classifiers(settings: Settings) -> Iterable[Classifier] | Classifier | None:
    """Contribute classifiers, whose outputs become `signals.<name>.<output>` in policies.

    Called once at start-up with the validated configuration (a classifier may read its
    options from it). Return a `Classifier` or a list of them. Each runs on every request:
    keep `classify` to microseconds of plain CPU work. A classifier that raises loses its
    signal for that request, and policies that need it fail closed. A classifier whose
    `name` is already taken replaces the built-in one (built-ins are `trylast`).
    """


@hookspec
def register_cel_functions(settings: Settings) -> Mapping[str, Callable[..., Any]] | None:
    """Contribute functions that routing policies can call in their `when` expressions.

    Called once at start-up and again for every policy reload. Return a mapping of function
    name to a Python callable taking and returning plain values (bool, int, float, str,
    list, dict, None); its positional parameters give the number of arguments it accepts.
    Policies call it as a global function, e.g. `contains_any(request.text, ["a", "b"])`.
    An exception it raises makes that policy's evaluation fail (a confidential policy then
    fails closed). Functions run on every request: keep them to microseconds.
    """


@hookspec(firstresult=True)
def choose_fallback(
    decision: Decision,
    failed: Target,
    error: RequestFailed,
    remaining: Sequence[Target],
    attempt: int,
) -> Target | str | None:
    """Choose what to try after an attempt failed with a retryable error.

    `decision` is the routing decision, `failed` the target that just failed with `error`
    (an `UpstreamStatusError` or `UpstreamUnavailable`), `remaining` the targets of the
    plan not tried yet whose breaker lets them through, in order, and `attempt` the
    number of attempts made so far. Return a `Target` to try next (usually one of
    `remaining`), `"stop"` to give up and answer with `error`, or None to leave the choice
    to the next plugin. The default (trylast) takes the first of `remaining`. The core
    checks every target returned: one outside the data boundary (a confidential request
    to a provider without `on_prem`) or whose breaker is open is never called.
    """


@hookspec(firstresult=True)
def model_price(model: ModelSettings, provider: ProviderSettings) -> Price | None:
    """Price a model that sidecar.yaml gives no `price:` for.

    Called once per such model at start-up, before the bundled list prices are consulted.
    `model.name` is the upstream model name, `provider.kind` the provider kind. Return a
    `sidecar.prices.Price` (USD per million tokens), or None to leave the model to the next
    plugin and then to the bundled table. Prices written in sidecar.yaml always win.
    """


@hookspec
def startup(settings: Settings) -> Awaitable[None] | None:
    """Called once when the server has started and before it takes traffic.

    `settings` is the validated configuration. Return an awaitable to do async set-up
    (open a connection, warm a cache). A plugin that raises is reported at `/-/plugins`;
    the sidecar serves on.
    """


@hookspec
def shutdown(settings: Settings) -> Awaitable[None] | None:
    """Called once when the server stops, after in-flight requests have finished.

    Release what `startup` acquired. May return an awaitable. Errors are logged.
    """


@hookspec
def request_finished(record: RequestRecord) -> Awaitable[None] | None:
    """Called after every request on `/v1/chat/completions`, once the client has its answer.

    `record` holds what happened (tier, model, policy, usage, status, timing); it never
    holds prompt or answer text. Observers never fail or delay a request: exceptions are
    logged and swallowed, and a returned awaitable runs after the response is sent.
    """
