"""Interop streaming: peak memory and throughput of SPIN-npz / HumanData import and export,
for N and 10 x N samples.

For each size a SPIN npz (imgname, center, scale, part, openpose, S, pose, shape, has_smpl)
and a compressed HumanData npz (COCO-like 2D + H36M-like 3D rows, SMPL dict) are generated
(tests/fixtures/interop.py layouts), then, each in a fresh process: the file is converted by
the real converter (``spin_npz`` / ``humandata``) into a zarr store, and that store is exported
back (``hmr.core.interop.export_*``). Figures: peak RSS above the process's RSS before each step (the
baseline measured in the same process; the peak is reset after imports and again before
the export), and samples/s. Blocks are 1,024 rows. Plain members stream in row blocks,
so the SPIN export and the importers' own reading stay flat from N to 10 x N; HumanData's
pickled members (``smpl`` dict: 0.7 KB per sample, plus its pickle bytes while unpickling;
on export also image paths and cameras) are whole by design, so those increments grow.

Run:  python benchmarks/interop_memory.py [--n 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def reset_peak() -> None:
    """Linux: reset the process's peak RSS (VmHWM) so import-time peaks do not mask ours."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_inputs(work: Path, n: int) -> None:
    from tests.fixtures.interop import spin_arrays, write_humandata, write_spin_npz

    write_spin_npz(work / f"spin_{n}.npz", spin_arrays(n, gender=True))
    items = _humandata_items(n)
    write_humandata(work / f"hd_{n}.npz", items)


def _humandata_items(n: int) -> dict:
    """Like the test fixture's, built vectorised (the fixture's per-row loop is for tiny N)."""
    from tests.fixtures.interop import HD_2D_ROWS, HD_3D_ROWS
    from hmr.core.keypoints.human_data import HUMAN_DATA_INDEX

    rng = np.random.default_rng(0)
    kps2d, kps3d = np.zeros((n, 190, 3)), np.zeros((n, 190, 4))
    rows2d = [HUMAN_DATA_INDEX[r] for r in HD_2D_ROWS]
    rows3d = [HUMAN_DATA_INDEX[r] for r in HD_3D_ROWS]
    kps2d[:, rows2d] = np.dstack([rng.uniform(0, 900, (n, len(rows2d), 2)), np.ones((n, len(rows2d), 1))])
    kps3d[:, rows3d] = np.dstack([rng.normal(0, 0.3, (n, len(rows3d), 3)), np.ones((n, len(rows3d), 1))])
    mask2d, mask3d = np.zeros(190, np.uint8), np.zeros(190, np.uint8)
    mask2d[rows2d], mask3d[rows3d] = 1, 1
    return {"image_path": [f"images/S9/frame_{i:07d}.jpg" for i in range(n)],
            "bbox_xywh": np.column_stack([rng.uniform(0, 500, (n, 2)), np.full((n, 2), 300.0), np.ones(n)]),
            "keypoints2d": kps2d, "keypoints2d_mask": mask2d, "keypoints3d": kps3d, "keypoints3d_mask": mask3d,
            "smpl": {"global_orient": rng.normal(0, 1, (n, 3)), "body_pose": rng.normal(0, 0.3, (n, 23, 3)),
                     "betas": rng.normal(0, 1, (n, 10))}, "config": "h36m"}


def _child(kind: str, work: str, n: int, queue) -> None:
    # everything a conversion imports (torch comes with hmr.core.keypoints): import cost is not
    # conversion cost
    import converters.humandata  # noqa: F401
    import converters.spin_npz  # noqa: F401
    import hmr.core.interop  # noqa: F401
    import hmr.core.keypoints  # noqa: F401
    import hmr.core.schema.store  # noqa: F401
    import manifests  # noqa: F401
    import zarr  # noqa: F401
    from converters.driver import run_conversion
    from converters.options import ConvertOptions
    from hmr.core.interop import export_humandata, export_spin_npz

    root = Path(work)
    base = rss_mb()
    reset_peak()
    name, split, export = {"spin": ("spin_npz", f"spin_{n}", export_spin_npz),
                           "humandata": ("humandata", f"hd_{n}", export_humandata)}[kind]
    start = time.perf_counter()
    result = run_conversion(name, root, root / f"{kind}_{n}.zarr", split=split, progress=False, argv=["bench"],
                            options=ConvertOptions(workers=1, check_images=False))
    t_import = time.perf_counter() - start
    peak_import = peak_rss_mb()
    before_export = rss_mb()
    reset_peak()
    start = time.perf_counter()
    export(root / f"{kind}_{n}.zarr", root / f"{kind}_{n}_out.npz")
    t_export = time.perf_counter() - start
    queue.put({"n": result.num_samples, "base": base, "import": peak_import - base,
               "export": peak_rss_mb() - before_export, "import_rate": n / t_import, "export_rate": n / t_export})


def measure(kind: str, work: Path, n: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, str(work), n, queue))
    proc.start()
    figures = queue.get()
    proc.join()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="base sample count N (also runs 10 x N)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: --n 50 (checks the script runs; figures meaningless)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n = 50
    from hmr.core.utils.machine import machine_line

    print(f"machine: {machine_line(1)} (one measuring process at a time)")
    with tempfile.TemporaryDirectory(prefix="hmr-bench-interop-") as tmp:
        work = Path(tmp)
        for n in (args.n, 10 * args.n):
            write_inputs(work, n)
        for kind in ("spin", "humandata"):
            rows = [measure(kind, work, n) for n in (args.n, 10 * args.n)]
            print(f"{kind}: import (convert -> zarr) and export (zarr -> npz), fresh process per size")
            print(f"{'samples':>9} {'after imports':>14} {'import +':>10} {'import/s':>10} "
                  f"{'export +':>20} {'export/s':>10}")
            for r in rows:
                print(f"{r['n']:>9,} {r['base']:>12.1f}MB {r['import']:>8.1f}MB {r['import_rate']:>10,.0f} "
                      f"{r['export']:>18.1f}MB {r['export_rate']:>10,.0f}")
            small, big = rows
            print(f"10N vs N (baseline = the N run): import increment x{big['import'] / max(small['import'], 1e-9):.2f}, "
                  f"export increment x{big['export'] / max(small['export'], 1e-9):.2f}, "
                  f"import rate x{big['import_rate'] / small['import_rate']:.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
