"""The GPU check: one script, a few minutes, run whenever a CUDA machine is available.

It runs, in order, and prints every figure with the device and the machine line:

1. the CUDA tests (``pytest tests/gpu tests/loaders/test_golden_stream.py``: body model,
   metrics, a training step in fp32 and bf16 + channels-last, SMPLify, each against the CPU on
   the same input; the uint8 batch normalised on the device, bit for bit; JPEG crops decoded
   and warped on the device against the same on the CPU, ``test_device_decode.py``);
2. the HMR-ResNet-50 training step at batch 64, 224 px: fp32, fp32 + channels-last,
   bf16 + channels-last (``benchmarks/train_step.py``; target: bf16 + CL >= 2x fp32);
3. whether the shard loader keeps the GPU fed: real training runs (ResNet-50, bf16 + CL, batch
   64, augmentation on) on a freshly rendered and sharded synthetic set with N loader workers,
   printing images/s and the fraction of wall time the step waited for data (the GPU idle
   fraction from input), for several N;
4. evaluation throughput on the device (``benchmarks/evaluate.py --device cuda``: SMPL of
   prediction and ground truth + metrics, samples/s, against the network's forward rate);
5. SMPLify fits/s, batched against one at a time (``benchmarks/smplify.py --device cuda``);
6. each of the five algorithms (HMR, SPIN, GraphCMR, PARE, Graphormer: their ``*_normal``
   configs, backbones and input sizes) in a short bf16 + channels-last training on the same
   synthetic shards, printing images/s of its last logging interval (issue 18's figure);
7. the shard loader with the crops decoded in the loader (``data.decode_on = "cpu"``, OpenCV)
   against decoded on the GPU (``"device"``: nvJPEG + grid_sample, loaders.device_decode):
   batches of 64 augmented 224² crops made and moved to the device as the trainer does
   (``move_batch``), images/s with 0 loader workers (one core: the CPU cost per image) and
   with the most workers of part 3; the CUDA-vs-CPU decode comparison of
   ``tests/loaders/test_device_decode.py`` runs in part 1.

A part that fails is reported and the next one still runs; the exit status is non-zero when
any part failed. ``--smoke`` runs the same parts on the CPU at toy sizes (the test suite does,
so the script keeps working between GPU sessions).

Run:  python benchmarks/gpu_check.py [--workers 4 8 14] [--log gpu_check.txt]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hmr.core.utils.machine import machine_line  # noqa: E402


def run_script(args: list[str], env: dict | None = None) -> None:
    """Run a benchmark script or pytest in a child process, streaming its output."""
    print("$ " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=REPO, check=True, env={**os.environ, **(env or {})})


def make_shards(folder: Path, n: int, size: int) -> Path:
    """Render ``n`` synthetic people, convert and shard them (crops of ``size`` px)."""
    from converters.driver import run_conversion
    from converters.options import ConvertOptions
    from hmr.synth.generate import SynthConfig, generate
    from loaders import ShardConfig, shard_store

    raw = folder / "raw"
    generate(raw, SynthConfig(n=n, split="train", image_size=size, seed=0))
    res = run_conversion("synth", raw, folder / "stores", split="train", options=ConvertOptions(), progress=False)
    return shard_store(res.store, folder / "shards", ShardConfig(crop_size=size, samples_per_shard=256),
                       progress=False)


def feed(set_dir: Path, run_dir: Path, workers: int, device: str, smoke: bool) -> dict[str, float]:
    """One short training run; the scalars of its last logging interval (steady state)."""
    from hmr.training.launch import train

    if smoke:
        model = ['model.backbone="resnet18"', "model.img_size=64", "train.batch_size=4",
                 "train.total_steps=2", "train.log_every=1", 'train.precision="fp32"']
    else:
        model = ['model.backbone="resnet50"', "model.img_size=224", "model.hidden=1024", "train.batch_size=64",
                 "train.total_steps=60", "train.log_every=20", 'train.precision="bf16"',
                 "train.channels_last=true"]
    overrides = [*model, f'train.device="{device}"', "train.checkpoint_every=100000", 'data.source="shards"',
                 f'data.shards=["{set_dir}"]', f"data.num_workers={workers}", "data.augment=true"]
    return train("tiny_cpu", overrides, out=run_dir, progress=False)


def loader_rate(set_dir: Path, decode_on: str, workers: int, device: str, smoke: bool) -> float:
    """Images/s of augmented batches read from ``set_dir`` and brought onto ``device`` as the
    trainer's ``move_batch`` does (normalised there, or decoded and warped there with
    ``decode_on = "device"``); the first batches (worker start, CUDA warm-up) not timed."""
    from hmr.training.trainer import move_batch
    from loaders import build_loader
    from loaders.stream import StreamConfig

    size, batch, warm, timed = (64, 4, 1, 3) if smoke else (224, 64, 3, 30)
    cfg = StreamConfig(out_size=size, batch_size=batch, shuffle_buffer=16 if smoke else 256, seed=0,
                       normalise_on_device=True, decode_on=decode_on)
    loader = build_loader([str(set_dir)], cfg, num_workers=workers, pin_memory=device == "cuda",
                          epoch_batches=warm + timed)
    dev = torch.device(device)
    it = iter(loader)
    for _ in range(warm):
        move_batch(next(it), dev, True)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(timed):
        img = move_batch(next(it), dev, True)["img"]
    if dev.type == "cuda":
        torch.cuda.synchronize()
    assert img.shape == (batch, 3, size, size) and img.dtype == torch.float32
    return timed * batch / (time.perf_counter() - t0)


#: the five algorithms of the benchmark table, by their "Normal" config
ALGORITHMS = ("hmr_normal", "spin_normal", "graphcmr_normal", "pare_normal", "graphormer_normal")
#: CPU smoke sizes per algorithm (the model's own small settings, as its tests use)
SMOKE_MODEL = {
    "hmr_normal": ['model.backbone="test_resnet"'],
    "spin_normal": ['model.backbone="test_resnet"'],
    "graphcmr_normal": ['model.backbone="test_resnet"', "model.graph_channels=64", "model.graph_layers=1",
                        "model.mesh_level=2"],
    "pare_normal": ['model.backbone="test_resnet"', "model.pare_branch_channels=16", "model.pare_smpl_features=8"],
    "graphormer_normal": ['model.backbone="test_resnet"', "model.transformer_hidden=[64, 32]",
                          "model.transformer_dims=[32]", "model.transformer_graph=[0, 1]",
                          "model.transformer_layers=1", "model.transformer_heads=2"],
}


def train_algorithm(algo: str, set_dir: Path, run_dir: Path, workers: int, device: str, smoke: bool
                    ) -> dict[str, float]:
    """A short training of one algorithm at its config's backbone and input size (bf16 +
    channels-last on the GPU); the scalars of its last logging interval."""
    from hmr.training.launch import train

    if smoke:
        sizes = [*SMOKE_MODEL[algo], "model.img_size=64", "train.batch_size=2", "train.total_steps=2",
                 "train.log_every=1", 'train.precision="fp32"']
        if algo.startswith("spin"):
            sizes += ["spin.camera_iters=2", "spin.body_iters=2"]
    else:
        sizes = ["train.batch_size=32", "train.total_steps=40", "train.log_every=20", 'train.precision="bf16"',
                 "train.channels_last=true"]
    if algo.startswith("spin"):
        sizes += ['train.init_from=""']  # SPIN starts from a trained HMR; a speed figure needs none
    overrides = [*sizes, f'train.device="{device}"', "train.checkpoint_every=100000", 'model.backbone_checkpoint=""',
                 'data.source="shards"', f'data.shards=["{set_dir}"]', f"data.num_workers={workers}",
                 "data.augment=true"]
    return train(algo, overrides, out=run_dir, progress=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="*", default=None,
                   help="loader worker counts to try in part 3 (default: 4, 8 and all cores but one)")
    p.add_argument("--images", type=int, default=2048, help="synthetic images rendered for part 3")
    p.add_argument("--log", type=Path, default=None, help="also append a summary to this file")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: every part on the CPU at toy sizes (checks the script runs; figures meaningless)")
    args = p.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: the GPU check needs one (--smoke runs its parts on the CPU)")
    cores = os.cpu_count() or 1
    workers = args.workers or ([0, 1] if args.smoke else sorted({4, 8, max(1, cores - 1)}))
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"GPU check on {name}, torch {torch.__version__}; {machine_line()}", flush=True)
    smoke = ["--smoke"] if args.smoke else []
    dev = [] if args.smoke else ["--device", "cuda"]
    summary: list[str] = []
    failed: list[str] = []

    def part(title: str, fn) -> None:
        print(f"\n== {title}", flush=True)
        t0 = time.perf_counter()
        try:
            fn()
            summary.append(f"{title}: ok ({time.perf_counter() - t0:.0f} s)")
        except Exception as exc:  # noqa: BLE001 - one broken part must not hide the others
            traceback.print_exc()
            failed.append(title)
            summary.append(f"{title}: FAILED ({type(exc).__name__}: {exc})")

    # 1. CUDA tests (on the CPU in smoke mode: the comparisons run CPU against CPU, one of them).
    tests = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu"]
    if not args.smoke:  # the uint8 batch normalised on the device, bit for bit against the CPU path;
        # JPEGs decoded and warped on the device against the same on the CPU (-s: its figures)
        tests += ["tests/loaders/test_golden_stream.py",
                  "tests/loaders/test_device_decode.py::test_cuda_decode_matches_the_cpu_decode", "-s"]
    part("CUDA tests", lambda: run_script(tests + (["-k", "metrics"] if args.smoke else []),
                                          env={"HMR_TEST_DEVICE": device}))
    # 2. Training step.
    part("HMR-ResNet-50 train step", lambda: run_script(
        ["benchmarks/train_step.py", *(smoke or ["--device", "cuda", "--batch", "64", "--size", "224"])]))

    # 3. Does the loader keep the GPU fed? (The shards are kept for part 6.)
    scratch = Path(tempfile.mkdtemp(prefix="hmr-gpu-check-"))
    shards: list[Path] = []

    def loader_feed() -> None:
        t0 = time.perf_counter()
        shards.append(make_shards(scratch, 16 if args.smoke else args.images, 64 if args.smoke else 256))
        print(f"rendered, converted and sharded in {time.perf_counter() - t0:.0f} s: {shards[0]}", flush=True)
        for w in workers:
            last = feed(shards[0], scratch / f"run_w{w}", w, device, args.smoke)
            line = (f"loader workers {w:2d}: {last.get('images_per_s', float('nan')):8.0f} images/s, "
                    f"waiting for data {100 * last.get('data_wait_fraction', float('nan')):5.1f}% of the time")
            print(line, flush=True)
            summary.append("  " + line)

    part("loader feeding the GPU (ResNet-50, bf16 + channels-last, batch 64)", loader_feed)
    # 4. Evaluation.
    part("evaluation throughput", lambda: run_script(["benchmarks/evaluate.py", *(smoke or dev)]))
    # 5. SMPLify.
    part("SMPLify", lambda: run_script(["benchmarks/smplify.py", *(smoke or [*dev, "--batch", "1024"])]))

    # 6. Each algorithm, a short bf16 training on the same shards.
    def algorithms() -> None:
        if not shards:
            raise RuntimeError("no shards (part 3 failed)")
        w = 0 if args.smoke else max(workers)
        for algo in ALGORITHMS:
            last = train_algorithm(algo, shards[0], scratch / f"run_{algo}", w, device, args.smoke)
            line = (f"{algo:18s} {last.get('images_per_s', float('nan')):8.0f} images/s "
                    f"(data wait {100 * last.get('data_wait_fraction', float('nan')):4.1f}%)")
            print(line, flush=True)
            summary.append("  " + line)

    # 7. Decoding the crops in the loader or on the GPU.
    def decode_modes() -> None:
        if not shards:
            raise RuntimeError("no shards (part 3 failed)")
        for w in ([0] if args.smoke else [0, max(workers)]):
            for mode in ("cpu", "device"):
                rate = loader_rate(shards[0], mode, w, device, args.smoke)
                line = f"decode_on = {mode!r:8s} loader workers {w:2d}: {rate:8.0f} images/s"
                print(line, flush=True)
                summary.append("  " + line)

    try:
        part("each algorithm, bf16 + channels-last training (its normal config)", algorithms)
        part("loader, crops decoded on the CPU vs on the device (batch 64, 224 px, augmented)", decode_modes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("\n== summary")
    print("\n".join(summary))
    if args.log is not None:
        with open(args.log, "a") as fh:
            fh.write(f"GPU check on {name}, {time.strftime('%Y-%m-%d %H:%M')}; {machine_line()}\n")
            fh.write("\n".join(summary) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
