"""The optional C extensions, and which of them this installation has.

Each is a hot loop with a pure-Python twin that gives the same results; an install without
a C compiler runs the twins, slower. `SIDECAR_PURE_PYTHON=1` in the environment makes the
sidecar run the twins even where the extensions are built (to rule an extension out when
looking into a problem, and so that the test suite can run on the twins alone). `sidecar
check` reports what is in use.
"""

from __future__ import annotations

import importlib
import os

EXTENSIONS = {
    "sidecar.classifiers._tokens": "tokens classifier",
    "sidecar.classifiers._task": "task classifier",
    "sidecar.classifiers._sensitive": "sensitive classifier",
    "sidecar.telemetry._otlp": "OTLP span encoder",
}
"""Module -> what it speeds up."""

PURE_PYTHON = "SIDECAR_PURE_PYTHON"


def disabled() -> bool:
    """The environment asks for the pure-Python twins."""
    return os.environ.get(PURE_PYTHON, "").strip().lower() not in ("", "0", "false", "no")


def allow() -> None:
    """Raise ImportError if the extensions are not to be used: called just before a module
    imports its extension, inside the `try` whose `except ImportError` takes the twin."""
    if disabled():
        raise ImportError(f"{PURE_PYTHON} is set")


def available() -> dict[str, bool]:
    """Each extension's description, and whether it is built and in use here."""
    found = {}
    for module, what in EXTENSIONS.items():
        try:
            allow()
            importlib.import_module(module)
        except ImportError:
            found[what] = False
        else:
            found[what] = True
    return found


def describe() -> str:
    """One line for `sidecar check`."""
    found = available()
    missing = [what for what, ok in found.items() if not ok]
    if not missing:
        return "native: C extensions in use (" + ", ".join(found) + ")"
    if disabled():
        return f"native: pure Python for all ({PURE_PYTHON} is set)"
    return (
        "native: pure Python for " + ", ".join(missing) + " (no C extension built: install "
        "with a C compiler and Python's headers for the faster path)"
    )
