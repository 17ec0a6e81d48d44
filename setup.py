"""Build of the optional native parts: everything else is in pyproject.toml.

Each `sidecar/**/_<name>.c` is built as the extension module `sidecar.**._<name>`: a hot
loop in C beside the Python module that uses it, which keeps a pure-Python twin giving
the same results (tests compare the two on the same inputs). `optional=True`: where no C
compiler is available the install still succeeds and the Python twins run; `sidecar check`
says which are in use.
"""

from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent

setup(
    ext_modules=[
        Extension(
            ".".join(source.relative_to(HERE).with_suffix("").parts),
            [source.relative_to(HERE).as_posix()],
            optional=True,
        )
        for source in sorted((HERE / "sidecar").rglob("_*.c"))
    ],
)
