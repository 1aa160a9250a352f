"""Plain-text tables of conventions, for ``hmr conventions`` and the docs."""

from __future__ import annotations

from hmr.core.keypoints.convention import get_convention, list_conventions
from hmr.core.keypoints.superset import SUPERSET_INDEX, family_of, superset_digest
from hmr.core.keypoints.tables import CONVENTION_ALIASES


def conventions_table() -> str:
    """One line per convention: name, joint count, aliases, description."""
    aliases: dict[str, list[str]] = {}
    for alias, target in CONVENTION_ALIASES.items():
        aliases.setdefault(target, []).append(alias)
    lines = [f"{'name':<18} {'K':>4}  description"]
    for name in list_conventions():
        conv = get_convention(name)
        extra = f" [aliases: {', '.join(sorted(aliases[name]))}]" if name in aliases else ""
        lines.append(f"{name:<18} {conv.num_joints:>4}  {conv.description}{extra}")
    lines.append(f"superset digest: {superset_digest()}")
    return "\n".join(lines)


def convention_table(name: str) -> str:
    """One line per joint: index, native name, superset name and slot, family, flip partner."""
    conv = get_convention(name)
    header = (f"{conv.name}: {conv.num_joints} joints. {conv.description}\n"
              f"source: {conv.source}\n")
    rows = [f"{'idx':>4}  {'native name':<22} {'superset name':<26} {'slot':>5}  "
            f"{'family':<10} flip"]
    for k, (native, joint) in enumerate(zip(conv.native_names, conv.joint_names)):
        partner = conv.flip_index[k]
        flip = "self" if partner == k else f"{partner} ({conv.native_names[partner]})"
        rows.append(f"{k:>4}  {native:<22} {joint:<26} {SUPERSET_INDEX[joint]:>5}  "
                    f"{family_of(joint):<10} {flip}")
    edges = ", ".join(f"{a}-{b}" for a, b in conv.skeleton)
    return header + "\n".join(rows) + f"\nskeleton ({len(conv.skeleton)} edges): {edges}"
