"""Peak RSS and throughput of the 3D converters for N and 10xN generated samples.

Usage: python benchmarks/convert_3d.py [N] [--smoke]
Each conversion runs in its own process (peak RSS = that process's ru_maxrss): the target is a
ratio near 1 between 10xN and N samples (conversion streams; memory does not grow with N).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.fixtures import converters_3d as fx  # noqa: E402

CHILD = """
import json, resource, sys, time
from converters.driver import run_conversion
from converters.options import ConvertOptions
name, root, out, split, extra = sys.argv[1:6]
t = time.perf_counter()
res = run_conversion(name, root, out, split=split, options=ConvertOptions(workers=1, check_images=False,
                     extra=json.loads(extra)), progress=False)
print(json.dumps({"n": res.num_samples, "s": time.perf_counter() - t,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(kind, root, frames):
    rng = np.random.default_rng(0)
    if kind == "mpi_inf_3dhp":
        for name in ("TS1", "TS5"):
            fx.write_3dhp_test_sequence(root, name, np.ones(frames), rng, images=None)
        return "test", {"subjects": "TS1,TS5"}
    if kind == "h36m":
        cams = fx.h36m_real_cameras()
        for i in range(max(1, frames // 1000)):  # more sequences, not longer ones
            for cam in fx.H36M_CAMERA_IDS:
                fx.write_h36m_sequence(root, "S9", f"Walking {i + 1}", cam, cams, min(frames, 1000) * 5, rng,
                                       masks=False, images=None)
        fx.write_h36m_metadata_xml(root / "metadata.xml", cams)
        return "test_p1", {"subjects": "S9"}
    for i in range(max(1, frames // 500)):
        fx.write_pw3d_sequence(root, "test", f"seq_{i:03d}", min(frames, 500), rng, images=False)
    return "test", {}


def main(n=500):
    from hmr.core.utils.machine import machine_line

    print(f"machine: {machine_line(1)} (one conversion process at a time, workers=1)")
    rows = []
    for kind in ("mpi_inf_3dhp", "h36m", "pw3d"):
        for frames in (n, 10 * n):
            with tempfile.TemporaryDirectory() as tmp:
                split, extra = generate(kind, Path(tmp) / "raw", frames)
                out = subprocess.run([sys.executable, "-c", CHILD, kind, str(Path(tmp) / "raw"),
                                      str(Path(tmp) / "o.zarr"), split, json.dumps(extra)],
                                     capture_output=True, text=True, check=True, cwd=str(REPO))
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append((kind, r["n"], r["rss_mb"], r["n"] / r["s"]))
                print(f"{kind:13s} samples={r['n']:6d} peak_rss={r['rss_mb']:7.1f} MB "
                      f"rate={r['n'] / r['s']:7.0f} samples/s", flush=True)
        small, big = rows[-2], rows[-1]
        print(f"{kind:13s} 10x samples -> peak RSS ratio {big[2] / small[2]:.2f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=500,
                        help="samples of the small run (the large run converts 10x as many)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: N = 5 (checks the script runs; figures meaningless)")
    args = parser.parse_args()
    main(5 if args.smoke else args.n)
