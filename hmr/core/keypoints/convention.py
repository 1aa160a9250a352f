"""Keypoint conventions: named, ordered joint lists with superset slots, flip and skeleton.

A :class:`Convention` describes how a ``(..., K, C)`` keypoint array of one source format is
laid out: ``joint_names[k]`` is the superset name of row ``k`` (``native_names[k]`` the
publisher's spelling), ``flip_index[k]`` the row a horizontal flip moves it to, and
``skeleton`` the drawable edges. Conventions are looked up by name in a plain registry.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hmr.core.errors import ConventionError
from hmr.core.keypoints.skeleton import skeleton_for
from hmr.core.keypoints.superset import (
    SUPERSET_INDEX, SUPERSET_JOINTS, SUPERSET_NAME, SUPERSET_VERSION, expand_sides, mirror_name,
    normalise_joint_name, resolve_superset_name,
)
from hmr.core.keypoints.tables import CONVENTION_ALIASES, CONVENTION_SPECS, ConventionSpec


@dataclass(frozen=True)
class Convention:
    """One keypoint layout. ``joint_names`` are superset names, unique, in array order."""

    name: str
    joint_names: tuple[str, ...]
    native_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    skeleton: tuple[tuple[str, str], ...]
    description: str
    source: str

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def superset_indices(self) -> np.ndarray:
        """Superset slot of each joint, np.int64 (K,)."""
        return np.array([SUPERSET_INDEX[n] for n in self.joint_names], dtype=np.int64)

    @property
    def skeleton_indices(self) -> np.ndarray:
        """Skeleton edges as joint indices of this convention, np.int64 (E, 2)."""
        pos = {n: i for i, n in enumerate(self.joint_names)}
        return np.array([(pos[a], pos[b]) for a, b in self.skeleton],
                        dtype=np.int64).reshape(-1, 2)

    def resolve(self, joint: str) -> str:
        """Superset name of ``joint`` given as a native name, superset name or alias."""
        native = {}
        for n, j in zip(self.native_names, self.joint_names):
            native.setdefault(expand_sides(normalise_joint_name(n)), j)
        for n, j in zip(self.native_names, self.joint_names):
            native[normalise_joint_name(n)] = j  # exact spellings beat expanded ones
        key = normalise_joint_name(joint)
        name = native.get(key) or native.get(expand_sides(key)) or resolve_superset_name(joint)
        if name is None:
            hint = _close_matches(key, list(native) + list(SUPERSET_JOINTS))
            raise ConventionError(f"unknown joint {joint!r} in convention '{self.name}'{hint}")
        return name

    def index(self, joint: str) -> int:
        """Row of ``joint`` (native name, superset name or alias) in this convention.

        A native name wins: in ``smpl`` 'left_hip' is SMPL's hip joint (superset
        'smpl_left_hip'), not the annotated hip. Use :meth:`slot_row` for superset names only.
        """
        name = self.resolve(joint)
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ConventionError(f"convention '{self.name}' has no joint '{name}' "
                                  f"(asked for {joint!r})") from None

    def slot_row(self, superset_name: str) -> int:
        """Row holding the superset joint ``superset_name`` (exact superset name)."""
        try:
            return self.joint_names.index(superset_name)
        except ValueError:
            raise ConventionError(f"convention '{self.name}' has no superset joint "
                                  f"'{superset_name}'") from None

    def indices(self, joints: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows of several joints (names as for :meth:`index`), np.int64 (J,)."""
        return np.array([self.index(j) for j in joints], dtype=np.int64)

    def slot_rows(self, superset_names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows of several superset joints (as for :meth:`slot_row`), np.int64 (J,).

        E.g. ``get_convention("h36m").slot_rows(get_convention("lsp14").joint_names[:12])``.
        """
        return np.array([self.slot_row(n) for n in superset_names], dtype=np.int64)


def _close_matches(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=4, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _flip_index(name: str, joint_names: tuple[str, ...]) -> tuple[int, ...]:
    pos = {n: i for i, n in enumerate(joint_names)}
    flip = []
    for n in joint_names:
        partner = mirror_name(n)
        if partner not in pos:
            raise ConventionError(f"convention '{name}': joint '{n}' has no mirror "
                                  f"'{partner}' in the same convention")
        flip.append(pos[partner])
    return tuple(flip)


def _build(spec: ConventionSpec) -> Convention:
    joints = []
    for native in spec.native:
        target = resolve_superset_name(spec.slots.get(native, native))
        if target is None:
            raise ConventionError(f"convention '{spec.name}': native joint '{native}' has "
                                  f"no superset slot")
        joints.append(target)
    joints_t = tuple(joints)
    dupes = sorted({n for n in joints_t if joints_t.count(n) > 1})
    if dupes:
        raise ConventionError(f"convention '{spec.name}' maps several joints to {dupes}")
    return Convention(spec.name, joints_t, tuple(spec.native), _flip_index(spec.name, joints_t),
                      skeleton_for(joints_t), spec.description, spec.source)


def _superset() -> Convention:
    return Convention(
        SUPERSET_NAME, SUPERSET_JOINTS, SUPERSET_JOINTS,
        _flip_index(SUPERSET_NAME, SUPERSET_JOINTS), skeleton_for(SUPERSET_JOINTS),
        f"hmrkit superset v{SUPERSET_VERSION}: every joint of every supported format, "
        "one slot per landmark definition (docs/keypoints.md).", "hmr/core/keypoints/superset.py")


@lru_cache(maxsize=1)
def _registry() -> dict[str, Convention]:
    conventions = {SUPERSET_NAME: _superset()}
    for spec in CONVENTION_SPECS:
        conventions[spec.name] = _build(spec)
    return conventions


def list_conventions() -> list[str]:
    """Names of all registered conventions (the superset first, then as declared)."""
    return list(_registry())


#: names already looked up, as given: converters and loaders ask per sample, and normalising
#: the name each time (regular expressions) was most of a keypoint conversion's cost
_BY_GIVEN_NAME: dict[str, Convention] = {}


def get_convention(name: str | Convention) -> Convention:
    """The convention called ``name`` (or one of its aliases, case-insensitive)."""
    if isinstance(name, Convention):
        return name
    hit = _BY_GIVEN_NAME.get(name)
    if hit is not None:
        return hit
    registry = _registry()
    key = normalise_joint_name(str(name))
    key = CONVENTION_ALIASES.get(key, key)
    if key in registry:
        _BY_GIVEN_NAME[name] = registry[key]
        return registry[key]
    hint = _close_matches(key, list(registry) + list(CONVENTION_ALIASES))
    raise ConventionError(f"unknown keypoint convention {name!r}{hint} "
                          "(run 'hmr conventions' to list them)")
