"""The import rule of docs/architecture.md: a module imports from its own unit or from units on
a lower rank, never from above or from a sibling on the same rank.

Every ``import`` / ``from ... import`` of the product's packages is read from the source
(function bodies, ``if TYPE_CHECKING`` blocks and conditional imports included), so an import
hidden inside a function cannot carry an arrow back up the house.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hmr", "manifests", "converters", "loaders", "cli")

# Lowest first. A unit is a package (or module) path; a module belongs to the longest unit
# that prefixes it. Units on one rank are siblings and may not import each other.
RANKS: list[tuple[str, tuple[str, ...]]] = [
    # the core floor: hmr.core
    ("core", ("hmr.core",)),            # the package itself (and hmr/__init__.py): __version__
    ("core", ("hmr.core.errors",)),
    ("core", ("hmr.core.utils",)),
    ("core", ("hmr.core.keypoints", "hmr.core.geometry", "hmr.core.boxes")),
    ("core", ("hmr.core.schema", "hmr.core.body", "hmr.core.render", "hmr.core.crop",
              "hmr.core.sources")),
    ("core", ("hmr.core.interop",)),
    # the data floor: what the raw files must be, raw -> stores, stores -> shards -> batches
    ("data", ("manifests",)),
    ("data", ("converters", "loaders")),
    # the application floor: the rest of hmr
    ("application", ("hmr.models", "hmr.losses", "hmr.synth")),
    ("application", ("hmr.fitting",)),
    ("application", ("hmr.evaluation",)),
    ("application", ("hmr.training",)),
    ("application", ("hmr.demo",)),
    ("application", ("hmr.review",)),
    # the interface: argument parsing only
    ("interface", ("cli",)),
]
RANK_OF = {unit: rank for rank, (_, units) in enumerate(RANKS) for unit in units}
FLOOR_OF = {unit: floor for floor, units in RANKS for unit in units}


def unit_of(module: str) -> str | None:
    """The longest unit that is ``module`` or a package above it; None if the module has none."""
    parts = module.split(".")
    if parts[0] == "hmr" and (len(parts) == 1 or parts[1].startswith("__")):
        return "hmr.core"  # hmr/__init__.py: hmr.core's version, re-exported
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate == "hmr.core" and n < len(parts) and not parts[n].startswith("__"):
            continue  # a module of the core floor must have a unit of its own
        if candidate in RANK_OF:
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every import in ``source``, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` may name a submodule: count it as ``pkg.sub``
            found += [(node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base)
                      for alias in node.names]
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every import of ``module`` that breaks the rule, as ``module:line -> target (why)``."""
    own = unit_of(module)
    if own is None:
        return [f"{module}: belongs to no unit of RANKS (place it in docs/architecture.md and here)"]
    problems = []
    for line, target in imported_modules(source, module, is_package):
        if target.split(".")[0] not in PACKAGES:
            continue
        unit = unit_of(target)
        if unit is None or unit == own:
            continue
        if RANK_OF[unit] >= RANK_OF[own]:
            why = "sibling on the same rank" if RANK_OF[unit] == RANK_OF[own] else (
                f"{FLOOR_OF[unit]} rank {RANK_OF[unit]} is above {FLOOR_OF[own]} rank {RANK_OF[own]}")
            problems.append(f"{module}:{line} -> {target} ({why})")
    return problems


def product_modules() -> list[tuple[str, Path]]:
    return sorted((module_name(p), p) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def test_every_import_of_the_product_follows_the_rank_rule():
    modules = product_modules()
    assert len(modules) > 150  # the walk found the packages
    problems = [v for name, path in modules
                for v in violations(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")]
    assert not problems, "imports against docs/architecture.md:\n" + "\n".join(problems)


def test_every_unit_of_the_rule_exists():
    for unit in RANK_OF:
        path = REPO / unit.replace(".", "/")
        assert path.is_dir() or path.with_suffix(".py").is_file(), f"RANKS names {unit}, which does not exist"


@pytest.mark.parametrize("module, source, expected", [
    # an upward import hidden in a function body
    ("hmr.core.schema.store", "def f():\n    from hmr.training import trainer\n", "hmr.training.trainer"),
    # the data floor reaching into the application floor
    ("loaders.shard", "import hmr.fitting.fits_table\n", "hmr.fitting.fits_table"),
    # siblings: converters and loaders do not know each other
    ("converters.coco", "from loaders.crop import warp\n", "loaders.crop"),
    # evaluation may not import training (checkpoints live with the models)
    ("hmr.evaluation.run", "from hmr.training.checkpoint import load\n", "hmr.training.checkpoint"),
    # a relative import resolved to its absolute name
    ("hmr.core.keypoints.convert", "from ..schema import store\n", "hmr.core.schema.store"),
    # ``from hmr import training`` names the application package
    ("manifests.verify", "from hmr import training\n", "hmr.training"),
])
def test_an_upward_import_is_reported(module, source, expected):
    problems = violations(module, source)
    assert len(problems) == 1 and f"-> {expected}" in problems[0], problems


@pytest.mark.parametrize("module, source", [
    ("cli.commands.train", "from hmr.training.trainer import train\nimport converters\n"),
    ("hmr.training.trainer", "def f():\n    from hmr.evaluation.run import evaluate\n"),
    ("converters.coco", "from manifests import load_manifest\nfrom hmr.core.schema import open_store\n"),
    ("hmr.core.schema.store", "from hmr.core.keypoints import convert_keypoints\nfrom . import fields\n"),
    ("manifests.lock", "from hmr import __version__\n"),
])
def test_a_downward_import_is_allowed(module, source):
    assert violations(module, source) == []


@pytest.mark.parametrize("module", ["hmr.newthing.x", "hmr.core.newthing"])
def test_a_module_outside_every_unit_is_reported(module):
    assert violations(module, "import numpy\n") == [
        f"{module}: belongs to no unit of RANKS (place it in docs/architecture.md and here)"]
