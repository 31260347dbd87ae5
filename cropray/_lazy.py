"""Lazy re-exports for package `__init__`s (PEP 562), so `import cropray.x` stays cheap.

Why: `cropray --help` and torch-free configs (`cropray.train.config`) must not pay for torch or Ray
(~3-4 s on 2 cores) just because a package `__init__` re-exports its heavy modules' names.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """(`__getattr__`, `__dir__`) for `package`: `exports` maps a public name to the module defining it.

    The first access imports that module and caches the value in the package, so later accesses are
    plain attribute lookups.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
