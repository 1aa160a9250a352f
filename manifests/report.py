"""The result of a verification: one :class:`FileCheck` per entry, plus the extras.

Statuses, and whether they fail the run:

========================  ======  ==============================================
status                    fails   meaning
========================  ======  ==============================================
``ok``                    no      size and every known checksum match
``size_ok``               no      size matches; checksum not compared (``--quick``)
``unverified``            no*     present, but the manifest knows no size/checksum
``absent_optional``       no      an optional entry (e.g. a deleted archive) is absent
``missing``               yes     a required entry is absent
``wrong_type``            yes     a file where a folder is expected, or the reverse
``wrong_size``            yes     size differs (a truncated or partial download)
``wrong_count``           yes     a folder holds a different number of files
``wrong_checksum``        yes     same size, different bytes
``unreadable``            yes     the file could not be read (permissions, I/O error)
``extra``                 yes**   a file no entry accounts for
``outside_root``          yes     a link leaving the root, or a FIFO/device: not read
========================  ======  ==============================================

\\* fails with ``strict=True`` when the entry is required (optional catch-all folders,
which only keep release files from being reported as extra, never fail). \\** not with
``extra_ok=True``. The table hides ``ok``, ``size_ok`` and optional ``unverified`` rows
unless ``show_ok``; the summary counts every status.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FAILING = {"missing", "wrong_type", "wrong_size", "wrong_count", "wrong_checksum",
           "unreadable", "extra", "outside_root"}
STATUS_ORDER = ["missing", "wrong_type", "wrong_size", "wrong_count", "wrong_checksum",
                "unreadable", "outside_root", "extra", "unverified", "size_ok", "absent_optional", "ok"]


@dataclass
class FileCheck:
    """What was expected of one path and what was found."""

    path: str
    kind: str
    status: str
    required: bool = True
    expected_size: int | None = None
    actual_size: int | None = None
    expected: dict[str, str] = field(default_factory=dict)  # algorithm -> hex digest
    actual: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    glob: str | None = None  # for folder entries: which files inside were checked

    @property
    def label(self) -> str:
        return f"{self.path} [{self.glob}]" if self.glob else self.path


@dataclass
class VerifyReport:
    """Everything ``hmr verify`` prints; ``ok`` decides the exit code."""

    target: str  # source manifest name, or the store path
    root: str
    manifest: str  # the manifest file that was checked against
    manifest_sha256: str
    quick: bool
    checks: list[FileCheck] = field(default_factory=list)
    extra_ok: bool = False
    strict: bool = False
    bytes_hashed: int = 0
    hash_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def failures(self) -> list[FileCheck]:
        bad = []
        for c in self.checks:
            if c.status == "extra" and self.extra_ok:
                continue
            if c.status in FAILING or (self.strict and c.status == "unverified" and c.required):
                bad.append(c)
        return bad

    @property
    def ok(self) -> bool:
        return not self.failures()

    def by_status(self, status: str) -> list[FileCheck]:
        return [c for c in self.checks if c.status == status]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return {s: out[s] for s in STATUS_ORDER if s in out}

    @property
    def mb_per_s(self) -> float:
        return self.bytes_hashed / 1e6 / self.hash_seconds if self.hash_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["summary"] = self.counts()
        d["mb_per_s"] = round(self.mb_per_s, 1)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def format_table(self, *, show_ok: bool = False) -> str:
        """Human summary: every problem on one line, then counts per status."""
        lines = [f"verify {self.target}  root={self.root}",
                 f"manifest {self.manifest}  sha256={self.manifest_sha256[:16]}…"]
        quiet = {"ok", "size_ok"}
        rows = [c for c in self.checks if show_ok or not (
            c.status in quiet or (c.status == "unverified" and not c.required))]
        rows.sort(key=lambda c: (STATUS_ORDER.index(c.status), c.label))
        if rows:
            width = max(len(c.status) for c in rows)
            lines.append("")
            for c in rows:
                lines.append(f"  {c.status:<{width}}  {c.label}{_describe(c)}")
        lines.append("")
        summary = ", ".join(f"{n} {s}" for s, n in self.counts().items()) or "no entries"
        lines.append(f"summary: {summary}")
        if self.bytes_hashed:
            lines.append(f"hashed {_human(self.bytes_hashed)} in {self.hash_seconds:.2f} s "
                         f"({self.mb_per_s:,.0f} MB/s)")
        elif self.quick:
            lines.append("quick mode: sizes only, no checksums compared")
        lines.extend(f"note: {n}" for n in self.notes)
        verdict = "OK" if self.ok else f"FAILED ({len(self.failures())} problem(s))"
        lines.append(f"result: {verdict}")
        return "\n".join(lines)


def _describe(c: FileCheck) -> str:
    if c.status == "wrong_size":
        return f"  (expected {c.expected_size:,} bytes, found {c.actual_size:,})"
    if c.status == "wrong_checksum":
        algo = next((a for a in c.expected if c.actual.get(a) != c.expected[a]), "sha256")
        what = f"{algo} expected {c.expected[algo][:16]}…, found {c.actual.get(algo, '?')[:16]}…"
        return f"  ({what}{'; ' + c.detail if c.detail else ''})"
    return f"  ({c.detail})" if c.detail else ""


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
