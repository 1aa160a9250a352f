"""Benchmark: verify a 2 GB sparse file; peak memory and throughput vs ``sha256sum``.

Creates the file in a temp dir (a hole plus one final byte, so it costs no disk), then
times ``sha256sum`` on it (the baseline, same run, same page cache) and our verifier in a
fresh interpreter whose peak RSS (``ru_maxrss``) is read in that interpreter. The two
alternate for ``--rounds`` rounds and the best time of each is kept, so neither pays alone
for a cold cache or a burst of load from other processes. Prints MB/s of both, the ratio,
and the verifier's peak RSS against the 200 MB budget. ``openssl dgst -sha256`` is shown
too when installed: it uses the same SHA extensions as Python's hashlib, coreutils'
``sha256sum`` usually does not.

Then many small files (a rendered dataset's images: ``--small-files`` of 5 kB each): our
thread-pool hashing (:func:`manifests.hashing.hash_many`, small files in batches per task)
against ``sha256sum`` given all of them in one process, files/s of both.

    python benchmarks/verify.py [--size-gb 2] [--workers 4] [--rounds 2] [--small-files 12000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
import manifests
t0 = time.perf_counter()
report = manifests.verify_source(sys.argv[1], sys.argv[2], progress=False,
                                 workers=int(sys.argv[3]))
wall = time.perf_counter() - t0
print(json.dumps({"ok": report.ok, "wall_s": wall, "hash_s": report.hash_seconds,
                  "bytes": report.bytes_hashed,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
MANIFEST = """schema_version = 1
name = "bench"
title = "benchmark file"
category = "dataset"
homepage = "https://example.org"
licence = "CC0"
registration_required = false
citation = "none"
converter = "converters.bench"
splits = []
sources = ["benchmarks/verify.py"]

[[files]]
path = "big.bin"
kind = "file"
size = {size}
sha256 = "{sha256}"
required = true
"""


def make_sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.seek(size - 1)
        fh.write(b"\x01")


def run_tool(cmd: list[str], field: int) -> tuple[str, float]:
    """Run a hashing tool; return (the digest at whitespace field ``field``, seconds)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return out.stdout.split()[field], time.perf_counter() - t0


def run_ours(manifest: Path, root: Path, workers: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(manifest), str(root), str(workers)],
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"verifier failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--small-files", type=int, default=12000)
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: a 16 MB file, 50 small files, one round (checks the script runs; figures meaningless)")
    args = ap.parse_args()
    if args.smoke:
        args.size_gb, args.rounds, args.small_files = 16 / 1024, 1, 50
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum not found: the baseline needs GNU coreutils")
    size = int(args.size_gb * 1024**3)
    best = {"sha256sum": float("inf"), "openssl": float("inf"), "ours": None}
    with tempfile.TemporaryDirectory(prefix="hmr-bench-verify-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        root.mkdir()
        big = root / "big.bin"
        make_sparse(big, size)
        digest = None
        for _ in range(args.rounds):
            digest, t = run_tool(["sha256sum", str(big)], 0)
            best["sha256sum"] = min(best["sha256sum"], t)
            (tmp / "bench.toml").write_text(MANIFEST.format(size=size, sha256=digest))
            res = run_ours(tmp / "bench.toml", root, args.workers)
            if best["ours"] is None or res["hash_s"] < best["ours"]["hash_s"]:
                best["ours"] = res
            if shutil.which("openssl"):
                _, t = run_tool(["openssl", "dgst", "-sha256", str(big)], -1)
                best["openssl"] = min(best["openssl"], t)
    status = report(size, best, args.workers, args.rounds)
    if args.small_files:
        small_files(args.small_files, None, args.rounds)  # hash_many's default threads, as hmr verify
    return status


def small_files(n: int, workers: int | None, rounds: int) -> None:
    import os

    sys.path.insert(0, str(REPO))
    from manifests.hashing import HashJob, hash_many

    with tempfile.TemporaryDirectory(prefix="hmr-bench-verify-small-") as tmp:
        paths = []
        for i in range(n):
            paths.append(Path(tmp) / f"{i:06d}.jpg")
            paths[-1].write_bytes(os.urandom(5000))
        jobs = [HashJob(p.name, p, ("sha256",), 5000) for p in paths]
        ours = tool = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            run = hash_many(jobs, workers=workers, progress=False)
            ours = min(ours, time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = subprocess.run(["xargs", "-0", "sha256sum"], input="\0".join(map(str, paths)),
                                 capture_output=True, text=True, check=True)
            tool = min(tool, time.perf_counter() - t0)
        theirs = {line.split()[1].rsplit("/", 1)[-1]: line.split()[0] for line in out.stdout.splitlines()}
        same = all(run.results[k].digests["sha256"] == v for k, v in theirs.items()) and len(theirs) == n
    print(f"{n:,} files of 5 kB, best of {rounds}: hash_many {n / ours:,.0f} files/s, "
          f"sha256sum (one process, xargs) {n / tool:,.0f} files/s, ratio {tool / ours:.2f}; "
          f"digests {'agree' if same else 'DIFFER'}")


def report(size: int, best: dict, workers: int, rounds: int) -> int:
    mb = size / 1e6
    res = best["ours"]
    peak_mb = res["peak_kb"] / 1024
    sys.path.insert(0, str(REPO))
    from hmr.core.utils.machine import machine_line

    print(f"file: {size / 1024**3:.1f} GiB sparse ({mb:,.0f} MB), workers={workers}, "
          f"best of {rounds} round(s); {machine_line(1)}")
    print(f"{'tool':<22}{'seconds':>9}{'MB/s':>9}")
    print(f"{'sha256sum':<22}{best['sha256sum']:>9.2f}{mb / best['sha256sum']:>9.0f}")
    if best["openssl"] != float("inf"):
        print(f"{'openssl dgst -sha256':<22}{best['openssl']:>9.2f}{mb / best['openssl']:>9.0f}")
    print(f"{'hmr verify (hashing)':<22}{res['hash_s']:>9.2f}{mb / res['hash_s']:>9.0f}")
    print(f"{'hmr verify (total)':<22}{res['wall_s']:>9.2f}{mb / res['wall_s']:>9.0f}")
    print(f"throughput ratio hmr/sha256sum: {best['sha256sum'] / res['hash_s']:.2f}")
    print(f"peak RSS of the verifying process: {peak_mb:.0f} MB (budget 200 MB) -> "
          f"{'OK' if peak_mb < 200 else 'OVER BUDGET'}")
    print(f"verification result: {'OK' if res['ok'] else 'FAILED'}")
    return 0 if res["ok"] and peak_mb < 200 else 1


if __name__ == "__main__":
    sys.exit(main())
