"""Hashing streams: verifying a large (sparse) file keeps the process under 200 MB.

The verify runs in a fresh interpreter so the peak RSS we read is its own (not that of the
test runner or of other tests' children). ``benchmarks/verify.py`` does the same with a
2 GB file and prints throughput next to ``sha256sum``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from manifests import ManifestFile, SourceManifest, dump_manifest
from tests.fixtures.manifests import make_sparse_file

SIZE = 256 * 1024 * 1024
# Peak RSS from /proc's VmHWM (this address space's own high-water mark): getrusage's
# ru_maxrss survives exec on Linux, so a child of a big test process would report the
# parent's peak instead of its own.
CHILD = """
import json, sys
import manifests
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = hwm_kb()
report = manifests.verify_source(sys.argv[1], sys.argv[2], progress=False, workers=4)
after = hwm_kb()
print(json.dumps({"ok": report.ok, "before_kb": before, "peak_kb": after,
                  "hashed": report.bytes_hashed}))
"""


def _sha256_of_sparse(size: int) -> str:
    h = hashlib.sha256()
    zeros = bytes(8 * 1024 * 1024)
    left = size - 1
    while left:
        n = min(left, len(zeros))
        h.update(zeros[:n])
        left -= n
    h.update(b"\x01")
    return h.hexdigest()


def test_verifying_a_256mb_file_stays_under_200mb(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    make_sparse_file(root / "big.bin", SIZE)
    manifest = tmp_path / "big.toml"
    entry = ManifestFile(path="big.bin", size=SIZE, sha256=_sha256_of_sparse(SIZE))
    manifest.write_text(dump_manifest(SourceManifest(
        name="big", title="one big file", category="dataset", homepage="https://example.org",
        licence="CC0", registration_required=False, citation="none",
        converter="converters.big", splits=[], sources=["test"], files=[entry])))
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", CHILD, str(manifest), str(root)],
                         capture_output=True, text=True, check=True, cwd=repo, timeout=300)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["hashed"] == SIZE
    peak_mb = res["peak_kb"] / 1024
    growth_mb = (res["peak_kb"] - res["before_kb"]) / 1024
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"
    assert growth_mb < 64, f"verify grew RSS by {growth_mb:.0f} MB for a {SIZE >> 20} MB file"
