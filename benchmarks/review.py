"""``hmr review`` on big stores: open a store of N samples, serve the first page, filter, sort.

A synthetic store (:class:`hmr.core.schema.StoreWriter`, COCO's 17 joints, labelled-joint
counts, SMPL flags and an ``extra_fit_error`` column varying by row; no images: thumbnails are
not part of these figures) is written once per N, then the review server is started on a free
loopback port in this process and asked over HTTP, one request at a time:

- ``open``: :class:`hmr.review.index.ReviewIndex` (reads the store's attributes only),
- ``first page``: ``/api/samples?limit=48`` (what the page shows on opening; the goal is under
  2 s at N = 1,000,000 on 2 cores, opening included),
- ``filter (cold)``: has SMPL and >= 10 labelled 2-D joints, the first time (reads the flag and
  keypoint columns block by block, never an image),
- ``filter (warm)``: the same again (cached columns),
- ``sort``: worst fit error first (reads ``extra_fit_error`` once),
- ``command -> first page``: ``python -m cli.main review STORE --port 0`` started as a process,
  timed from its start to the first page's answer: Python's imports included (the goal of
  2 s counts them; the start path imports no torch),
- ``mark 1,000``: :func:`hmr.review.marks.update_marks` of 1,000 rows spread over the store
  (the first write reads every row's source key once, to name the samples by identity),
- ``page, marks kept``: open + first page of a new index with those marks beside the store
  (the conversion they were made on: only the marked rows' keys are read),
- ``page, marks re-matched``: the same when the marks say they were made on another
  conversion (every row's source key read to find the marked samples again).

Run: ``.venv/bin/python benchmarks/review.py [--sizes 10000 100000 1000000]``; ``--smoke``: toy sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmr.core.schema import StoreWriter  # noqa: E402
from hmr.core.schema.fields import SMPL_SOURCES, empty_columns  # noqa: E402
from hmr.core.utils.machine import machine_line  # noqa: E402
from hmr.review.index import ReviewIndex  # noqa: E402
from hmr.review.server import serve_in_thread  # noqa: E402

K = 17
BLOCK = 65536


def write_store(path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    with StoreWriter(path, dataset="bench", split="train", converter="benchmarks.review", converter_version="1",
                     keypoint_convention="coco", chunk_rows=16384) as w:
        for start in range(0, n, BLOCK):
            m = min(BLOCK, n - start)
            cols = empty_columns(m, K)
            rows = np.arange(start, start + m)
            cols["image_path"] = np.array([f"img/{r:08d}.jpg" for r in rows], dtype=object)
            cols["source_key"] = np.array([str(r) for r in rows], dtype=object)
            cols["image_hw"][:] = (480, 640)
            cols["bbox_xywh"][:] = (100, 50, 200, 400)
            labelled = rows % (K + 1)
            cols["keypoints2d"][..., 0] = rng.uniform(100, 300, (m, K))
            cols["keypoints2d"][..., 1] = rng.uniform(50, 450, (m, K))
            cols["keypoints2d"][..., 2] = np.arange(K)[None] < labelled[:, None]
            cols["has_smpl"] = rows % 3 == 0
            cols["smpl_source"] = np.where(cols["has_smpl"], SMPL_SOURCES.index("eft"), 0).astype(np.uint8)
            cols["extra_fit_error"] = rng.gamma(2.0, 20.0, m).astype(np.float32)
            w.add_columns(cols)
    return path


def timed_get(url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        data = json.loads(r.read())
    return time.perf_counter() - t0, data


def measure(path: Path, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    index = ReviewIndex([path])
    t_open = time.perf_counter() - t0
    server, _ = serve_in_thread(index, 0)
    base = f"http://127.0.0.1:{server.server_address[1]}/api/samples"
    try:
        t_first, first = timed_get(f"{base}?limit=48")
        assert first["total"] == n and len(first["items"]) == min(48, n)
        query = f"{base}?limit=48&has_smpl=1&min_joints2d=10"
        t_cold, cold = timed_get(query)
        t_warm, warm = timed_get(query)
        expected = int(((np.arange(n) % 3 == 0) & (np.arange(n) % (K + 1) >= 10)).sum())
        assert cold["total"] == warm["total"] == expected, (cold["total"], expected)
        t_sort, worst = timed_get(f"{base}?limit=48&sort=-fit_error")
        errs = [it["fit_error"] for it in worst["items"]]
        assert errs == sorted(errs, reverse=True)
    finally:
        server.shutdown()
        server.server_close()
    return {"open": t_open, "first page": t_first, "open + first page": t_open + t_first,
            "filter (cold)": t_cold, "filter (warm)": t_warm, "sort": t_sort}


def measure_marks(path: Path, n: int) -> dict[str, float]:
    """Seconds to mark 1,000 samples, then to open the store and show its first page with
    the marks of this conversion, and with marks of another conversion to re-match."""
    from hmr.core.schema import open_store
    from hmr.review.marks import marks_path, update_marks

    rows = np.linspace(0, n - 1, min(1000, n)).astype(int).tolist()
    t0 = time.perf_counter()
    update_marks(path, set_marks={r: "benchmark" for r in rows}, store=open_store(path))
    t_mark = time.perf_counter() - t0

    def page() -> float:
        t0 = time.perf_counter()
        server, _ = serve_in_thread(ReviewIndex([path]), 0)
        try:
            _, first = timed_get(f"http://127.0.0.1:{server.server_address[1]}/api/samples?limit=48")
            seconds = time.perf_counter() - t0
            assert sum(it["mark"] is not None for it in first["items"]) == sum(r < 48 for r in rows)
        finally:
            server.shutdown()
            server.server_close()
        return seconds

    t_kept = page()
    doc = json.loads(marks_path(path).read_text())
    doc["source_keys_sha256"] = "another conversion"
    marks_path(path).write_text(json.dumps(doc))
    t_rematched = page()
    marks_path(path).unlink()
    return {"mark 1,000": t_mark, "page, marks kept": t_kept, "page, marks re-matched": t_rematched}


def command_to_first_page(path: Path, n: int) -> float:
    """Seconds from starting ``hmr review STORE`` (a new Python process) to the first page."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "review", str(path), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        if not line.startswith("hmr review: http://"):
            raise RuntimeError(f"hmr review did not start: {line!r}")
        _, first = timed_get(line.split()[2] + "api/samples?limit=48")
        assert first["total"] == n
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--smoke", action="store_true", help="toy sizes (seconds): the script runs end to end")
    ap.add_argument("--workdir", help="where the synthetic stores go (default: a temporary folder)")
    args = ap.parse_args(argv)
    sizes = [500, 3000] if args.smoke else args.sizes
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="hmr-review-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    names = ["open", "first page", "open + first page", "filter (cold)", "filter (warm)", "sort",
             "command -> first page", "mark 1,000", "page, marks kept", "page, marks re-matched"]
    widths = {k: max(17, len(k)) for k in names}
    print(f"{'samples':>10}  {'write s':>8}  " + "  ".join(f"{k:>{widths[k]}}" for k in names))
    try:
        for n in sizes:
            path = work / f"bench_{n}.zarr"
            t0 = time.perf_counter()
            write_store(path, n)
            t_write = time.perf_counter() - t0
            figures = measure(path, n)
            figures["command -> first page"] = command_to_first_page(path, n)
            figures.update(measure_marks(path, n))
            cells = "  ".join(f"{figures[k]:>{widths[k] - 2}.3f} s" for k in names)
            print(f"{n:>10}  {t_write:>8.2f}  " + cells, flush=True)
            shutil.rmtree(path)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
