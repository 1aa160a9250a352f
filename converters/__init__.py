"""Dataset converters: one module per source, each reading the dataset's real raw layout
and yielding schema-v1 samples (the contract is in :mod:`converters.driver`).

Which module converts which source is declared in :data:`hmr.core.sources.SOURCES`
(``Source.converter``); a converter module points back with ``SOURCE = SOURCES["<name>"]``.
Adding a converter is writing ``converters/<name>.py`` and setting ``converter`` in its row.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hmr.core.errors import HmrError
from hmr.core.sources import SOURCES, get_source


def registry() -> dict[str, str]:
    """Source name -> converter module path, for every source that has a converter."""
    return {name: s.converter for name, s in SOURCES.items() if s.converter is not None}


def list_converters() -> list[str]:
    """Names of the sources that have a converter, sorted."""
    return list(registry())


def get_converter(name: str) -> ModuleType:
    """The converter module of a source, by name or alias (``eft-coco`` -> ``eft_coco``)."""
    source = get_source(name)
    if source.converter is None:
        raise HmrError(f"source '{source.name}' has no converter yet; run 'hmr datasets' for "
                       f"the sources that convert")
    return importlib.import_module(source.converter)
