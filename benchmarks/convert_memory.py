"""Converter streaming: peak memory for N and 10 x N samples, and throughput.

Part 1 (COCO format): a generated ``person_keypoints_val2017.json`` with N and 10 x N person
annotations (17 keypoints each, 4 persons per image) is converted by the real ``coco2017``
converter into a zarr store, each size in a fresh process. Figures per size: peak RSS of the
process, RSS once the annotation file is parsed (the JSON itself must be in memory: COCO is
one JSON document), the conversion's own increment above that (what streaming keeps flat),
and samples/s. The baseline is the N run of the same invocation: the increment at 10 x N
should be about the same, while the parsed-JSON part grows with N.

Part 2 (synth): an ``annotations/train.json`` of N and 10 x N samples in ``hmr synth``'s
format (the records of a real 4-sample ``hmr synth`` run, repeated with new ids; ~18 kB a
sample) converted by the ``synth`` converter (images not opened), each size in a fresh process:
peak RSS during the conversion (the peak mark is reset after the imports, where Linux allows). The converter streams the file, so the 10 x N peak should stay within 1.2x of N's.

Part 3 (per-image work): LSP-layout ``joints.mat`` + M tiny images whose headers are read
for ``image_hw``; samples/s with 1 worker, with all cores (``os.cpu_count()``) forcing the
process pool, and with all cores and the default rule (pool only when a header read is
slower than ``POOL_MIN_SECONDS_PER_IMAGE``; baseline = 1 worker, same run).

Run:  python benchmarks/convert_memory.py [--n 2000] [--synth-n 1000] [--images 1500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_coco_json(path: Path, n_persons: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_images = (n_persons + 3) // 4
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "height": 480, "width": 640}
              for i in range(n_images)]
    anns = []
    for a in range(n_persons):
        kps = np.c_[rng.integers(0, 640, 17), rng.integers(0, 480, 17), rng.integers(1, 3, 17)]
        anns.append({"id": a + 1, "image_id": a // 4 + 1, "category_id": 1, "iscrowd": 0,
                     "num_keypoints": 17, "keypoints": kps.ravel().tolist(),
                     "bbox": [10.0, 20.0, 100.0, 200.0], "area": 20000.0})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person"}]}))


def warm_imports() -> None:
    """Import what every conversion imports (torch comes with hmr.core.keypoints), so the figures
    are about converting, not about importing."""
    import converters.coco  # noqa: F401
    import hmr.core.keypoints  # noqa: F401
    import hmr.core.schema.store  # noqa: F401
    import manifests  # noqa: F401
    import pycocotools.coco  # noqa: F401
    import zarr  # noqa: F401


def _convert_child(root: str, out: str, queue) -> None:
    """Runs in a fresh process: convert and report memory figures."""
    warm_imports()
    import converters.coco_format as coco  # the COCO-style reader the coco2017 converter uses
    from converters.driver import run_conversion
    from converters.options import ConvertOptions

    marks = {"imported": rss_mb()}
    original = coco.iter_coco

    def watched(*args, **kwargs):
        first = True
        for item in original(*args, **kwargs):
            if first:  # the JSON is parsed and indexed once the first sample exists
                marks["parsed"], marks["t_first"], first = rss_mb(), time.perf_counter(), False
            yield item

    coco.iter_coco = watched
    start = time.perf_counter()
    result = run_conversion("coco2017", root, out, split="val", progress=False, argv=["bench"],
                            options=ConvertOptions(workers=1, check_images=False))
    end = time.perf_counter()
    queue.put({**marks, "peak": peak_rss_mb(), "n": result.num_samples, "seconds": end - start,
               "stream_seconds": end - marks["t_first"]})


def measure_coco(n: int, workdir: Path) -> dict:
    root = workdir / f"coco_{n}"
    write_coco_json(root / "annotations" / "person_keypoints_val2017.json", n)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_convert_child, args=(str(root), str(workdir / f"out_{n}"), queue))
    proc.start()
    figures = queue.get()
    proc.join()
    return figures


def write_synth_json(root: Path, n: int) -> None:
    """``annotations/train.json`` of ``n`` samples: a real 4-sample ``hmr synth`` file's records
    repeated with new ids (written one record at a time: the benchmark stays small too)."""
    from hmr.synth.generate import SynthConfig, generate

    seed_root = root.parent / "synth_seed"
    if not (seed_root / "annotations" / "train.json").is_file():
        generate(seed_root, SynthConfig(n=4, split="train", image_size=32, seed=0, workers=1), progress=False)
    data = json.loads((seed_root / "annotations" / "train.json").read_text())
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    with open(root / "annotations" / "train.json", "w") as fh:
        fh.write('{"info": ' + json.dumps(data["info"]) + ', "images": [')
        for i in range(n):
            im = data["images"][i % len(data["images"])]
            fh.write((", " if i else "") + json.dumps({**im, "id": i, "file_name": f"images/train/{i:06d}.jpg"}))
        fh.write('], "annotations": [')
        for i in range(n):
            ann = data["annotations"][i % len(data["annotations"])]
            fh.write((", " if i else "") + json.dumps({**ann, "id": i, "image_id": i}))
        fh.write("]}")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0: ``clear_refs`` 5), so
    the peak measured next is the conversion's, not importing torch's (~500 MB transient)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_hwm_mb() -> float:
    """Peak RSS since the last :func:`reset_peak_rss` (``VmHWM``), else since the start."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def _convert_synth_child(root: str, out: str, queue) -> None:
    warm_imports()
    import converters.synth  # noqa: F401  (imports torch)
    from converters.driver import run_conversion
    from converters.options import ConvertOptions

    imported = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    result = run_conversion("synth", root, out, split="train", progress=False, argv=["bench"],
                            options=ConvertOptions(workers=1, check_images=False))
    queue.put({"imported": imported, "peak": vm_hwm_mb(), "n": result.num_samples,
               "seconds": time.perf_counter() - start,
               "json_mb": (Path(root) / "annotations" / "train.json").stat().st_size / 2**20})


def measure_synth(n: int, workdir: Path) -> dict:
    root = workdir / f"synth_{n}"
    ctx = mp.get_context("spawn")
    # Written in a process of its own: a child's ru_maxrss starts at its parent's peak (Linux
    # keeps it across fork and exec), and rendering the seed file costs hundreds of MB.
    writer = ctx.Process(target=write_synth_json, args=(root, n))
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        raise SystemExit(f"writing the synth annotation file failed (exit code {writer.exitcode})")
    queue = ctx.Queue()
    proc = ctx.Process(target=_convert_synth_child, args=(str(root), str(workdir / f"synth_out_{n}"), queue))
    proc.start()
    figures = queue.get()
    proc.join()
    return figures


def measure_images(m: int, workdir: Path) -> dict[int, float]:
    from converters.driver import run_conversion
    from converters.options import ConvertOptions
    from tests.fixtures.converters_2d import write_lsp

    root = workdir / "lsp"
    write_lsp(root, n=2 * m)
    warm_imports()
    import converters.images as images

    default_threshold = images.POOL_MIN_SECONDS_PER_IMAGE
    cores = os.cpu_count() or 1
    rates = {}
    for label, workers, threshold in (("1 worker", 1, default_threshold),
                                      (f"{cores} workers, pool forced", cores, -1.0),
                                      (f"{cores} workers, default rule", cores, default_threshold)):
        images.POOL_MIN_SECONDS_PER_IMAGE = threshold
        start = time.perf_counter()
        result = run_conversion("lsp", root, workdir / f"lsp_out_{len(rates)}", split="train",
                                progress=False, argv=["bench"], options=ConvertOptions(workers=workers))
        rates[label] = result.num_samples / (time.perf_counter() - start)
    images.POOL_MIN_SECONDS_PER_IMAGE = default_threshold
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="base sample count N (also runs 10 x N)")
    parser.add_argument("--synth-n", type=int, default=1000, help="synth samples N (also runs 10 x N)")
    parser.add_argument("--images", type=int, default=1500, help="images for the per-image part (0: skip)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds: --n 20 --synth-n 10 --images 20 (checks the script runs; figures meaningless)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.images, args.synth_n = 20, 20, 10
    from hmr.core.utils.machine import machine_line

    print(f"machine: {machine_line(1)} (one measuring process at a time)")
    with tempfile.TemporaryDirectory(prefix="hmr-bench-convert-") as tmp:
        work = Path(tmp)
        rows = [measure_coco(n, work) for n in (args.n, 10 * args.n)]
        print("COCO-format conversion (coco2017 converter -> zarr), fresh process per size")
        print(f"{'samples':>9} {'peak RSS':>10} {'after imports':>14} {'parsed JSON':>12} "
              f"{'conversion +':>13} {'samples/s':>10} {'streaming/s':>12}")
        for r in rows:
            print(f"{r['n']:>9,} {r['peak']:>8.1f}MB {r['imported']:>12.1f}MB "
                  f"{r['parsed'] - r['imported']:>10.1f}MB {r['peak'] - r['parsed']:>11.1f}MB "
                  f"{r['n'] / r['seconds']:>10,.0f} {r['n'] / r['stream_seconds']:>12,.0f}")
        base, big = rows
        print(f"10N vs N (baseline = the N run): peak RSS x{big['peak'] / base['peak']:.2f}; "
              f"conversion increment {big['peak'] - big['parsed']:.1f} MB vs "
              f"{base['peak'] - base['parsed']:.1f} MB; streaming throughput "
              f"x{(big['n'] / big['stream_seconds']) / (base['n'] / base['stream_seconds']):.2f}")
        rows = [measure_synth(n, work) for n in (args.synth_n, 10 * args.synth_n)]
        print("\nsynth conversion (annotation JSON streamed -> zarr), fresh process per size")
        print(f"{'samples':>9} {'JSON':>9} {'peak RSS':>10} {'after imports':>14} {'conversion +':>13} "
              f"{'samples/s':>10}")
        for r in rows:
            print(f"{r['n']:>9,} {r['json_mb']:>7.1f}MB {r['peak']:>8.1f}MB {r['imported']:>12.1f}MB "
                  f"{r['peak'] - r['imported']:>11.1f}MB {r['n'] / r['seconds']:>10,.0f}")
        ratio = rows[1]["peak"] / rows[0]["peak"]
        print(f"10N vs N: peak RSS x{ratio:.2f} (goal <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'}); "
              f"conversion increment {rows[1]['peak'] - rows[1]['imported']:.1f} MB vs "
              f"{rows[0]['peak'] - rows[0]['imported']:.1f} MB")
        if args.images:
            rates = measure_images(args.images, work)
            print(f"\nPer-image header reads (lsp converter, {args.images} samples)")
            base = next(iter(rates.values()))
            for label, rate in rates.items():
                print(f"  {label:<28} {rate:>8,.0f} samples/s  (x{rate / base:.2f} vs 1 worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
