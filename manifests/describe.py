"""Plain-text views of source manifests for ``hmr manifest list`` / ``show``."""

from __future__ import annotations

from manifests.model import SourceManifest


def checkable(m: SourceManifest) -> tuple[int, int]:
    """``(entries with a checksum, entries)``: how much of a source verify can prove."""
    return sum(f.has_checksum for f in m.files), len(m.files)


def summary_table(items: list[SourceManifest]) -> str:
    rows = [("NAME", "CATEGORY", "REG", "CHECKSUMS", "CONVERTER", "TITLE")]
    for m in items:
        known, total = checkable(m)
        rows.append((m.name, m.category, "yes" if m.registration_required else "no",
                     f"{known}/{total}", m.converter or "-", m.title))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    lines.append(f"\n{len(items)} manifests; CHECKSUMS = entries with a known checksum "
                 f"(lock a trusted copy to fill the rest: hmr manifest lock NAME --root DIR)")
    return "\n".join(lines)


def _fmt(v: object) -> str:
    return "unknown" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def describe_manifest(m: SourceManifest) -> str:
    lines = [f"{m.title} ({m.name}, {m.category})",
             f"  homepage: {m.homepage}",
             f"  licence: {m.licence}",
             f"  registration required: {'yes' if m.registration_required else 'no'}",
             f"  converter: {m.converter or '-'}    splits: {', '.join(m.splits) or '-'}",
             f"  manifest: {m.manifest_path}"]
    if m.locked:
        lines.append(f"  locked from {m.locked.get('root')} at {m.locked.get('at')}")
    if m.notes:
        lines.append(f"  notes: {m.notes.strip()}")
    lines.append("  entries:")
    for f in m.files:
        flag = "" if f.required else " (optional)"
        lines.append(f"    [{f.kind}] {f.path}{flag}")
        if f.url:
            lines.append(f"        url: {f.url}")
        if f.kind == "dir":
            lines.append(f"        glob: {f.glob}  count: {_fmt(f.count)}  size: {_fmt(f.size)}"
                         f"  tree_sha256: {_fmt(f.tree_sha256)}")
        else:
            md5 = f"  md5: {f.md5}" if f.md5 else ""
            lines.append(f"        size: {_fmt(f.size)}  sha256: {_fmt(f.sha256)}{md5}")
        if f.archive:
            lines.append(f"        from archive: {f.archive}")
        if f.extract_to:
            lines.append(f"        extracts to: {f.extract_to}")
        if f.note:
            lines.append(f"        note: {f.note}")
    lines.append("  sources:")
    lines.extend(f"    - {s}" for s in m.sources)
    lines.append("  citation:")
    lines.extend(f"    {line}" for line in m.citation.strip().splitlines())
    return "\n".join(lines)
