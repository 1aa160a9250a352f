"""Dataset converters: one module per source, each reading the dataset's real raw layout
and yielding schema-v1 samples (the contract is in :mod:`converters.common`).

A converter module declares ``NAME`` (and optionally ``ALIASES``); the registry finds it
by scanning this package, so adding a converter is adding one file.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from types import ModuleType

from hmr.core.errors import HmrError

_NOT_CONVERTERS = {"common"}
_registry: dict[str, str] | None = None


def registry() -> dict[str, str]:
    """Converter name -> module path, discovered once."""
    global _registry
    if _registry is None:
        found: dict[str, str] = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name in _NOT_CONVERTERS:
                continue
            path = f"{__name__}.{info.name}"
            module = importlib.import_module(path)
            for name in (getattr(module, "NAME", None), *getattr(module, "ALIASES", ())):
                if name:
                    found[name] = path
        _registry = dict(sorted(found.items()))
    return _registry


def list_converters() -> list[str]:
    return list(registry())


def get_converter(name: str) -> ModuleType:
    reg = registry()
    if name not in reg:
        close = difflib.get_close_matches(name, reg, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise HmrError(f"unknown converter '{name}'{hint}; run 'hmr datasets' for the list")
    return importlib.import_module(reg[name])
