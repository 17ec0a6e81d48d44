"""The optional C extensions, and which of them this installation has.

Each is a hot loop with a pure-Python twin that gives the same results; an install without
a C compiler runs the twins, slower. `sidecar check` reports what is in use.
"""

from __future__ import annotations

import importlib

EXTENSIONS = {
    "sidecar.classifiers._tokens": "tokens classifier",
    "sidecar.classifiers._task": "task classifier",
    "sidecar.classifiers._sensitive": "sensitive classifier",
    "sidecar.telemetry._otlp": "OTLP span encoder",
}
"""Module -> what it speeds up."""


def available() -> dict[str, bool]:
    """Each extension's description, and whether it imports here."""
    found = {}
    for module, what in EXTENSIONS.items():
        try:
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
    return (
        "native: pure Python for " + ", ".join(missing) + " (no C extension built: install "
        "with a C compiler and Python's headers for the faster path)"
    )
