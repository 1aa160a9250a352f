"""How well the demo's network learns: train ``demo_cpu`` (with overrides) on the data of an
existing demo folder and score it, and its mean-pose baseline, on the test and training stores.

The demo's learning target (PA-MPJPE 30% below the mean-pose baseline) was tuned with this:
each run prints one JSON line and appends it to ``--results`` (docs/dev/demo-history.md has the tables).

Run:  hmr demo --out /tmp/d8k --steps 2          # data only (the 2-step model is ignored)
      python benchmarks/demo_learning.py NAME /tmp/d8k [OVERRIDE ...]
      e.g.  ... r18 /tmp/d8k 'model.backbone="resnet18"' train.total_steps=2000
      OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 benchmarks/demo_learning.py NAME /tmp/d8k train.batch_size=32
                                                       # two one-thread DDP ranks, 32 samples each
      python benchmarks/demo_learning.py --smoke   # seconds: quick demo data, 2 steps, in a temp folder
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hmr.core.utils.machine import machine_line  # noqa: E402
from hmr.demo import DemoConfig, run_demo  # noqa: E402
from hmr.evaluation.baselines import mean_pose_checkpoint  # noqa: E402
from hmr.evaluation.run import EvalOptions, evaluate  # noqa: E402
from hmr.training.launch import train  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help="run name (folder under --out)")
    p.add_argument("demo_dir", type=Path, nargs="?", help="an `hmr demo` output folder (its stores and shards)")
    p.add_argument("overrides", nargs="*", help="config overrides, as for hmr train")
    p.add_argument("--out", type=Path, default=Path("runs/demo_learning"))
    p.add_argument("--results", type=Path, default=Path("runs/demo_learning/results.jsonl"))
    p.add_argument("--samples", type=int, default=200, help="samples scored per store")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: make quick demo data in a temporary folder and train 2 steps there "
                        "(checks the script runs; figures meaningless)")
    args = p.parse_args()
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="hmr-bench-demo-learning-"))
        try:
            run_demo(DemoConfig(out=scratch / "demo", quick=True))
            args.name, args.demo_dir, args.out, args.results = "smoke", scratch / "demo", scratch, scratch / "r.jsonl"
            args.samples = 8
            args.overrides = [*args.overrides, "train.total_steps=2", "train.checkpoint_every=2",
                              "model.img_size=64", "train.batch_size=8", "optim.warmup_steps=0"]
            run(args)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    if args.name is None or args.demo_dir is None:
        p.error("NAME and DEMO_DIR are required (or pass --smoke)")
    run(args)


def run(args: argparse.Namespace) -> None:
    print(f"machine: {machine_line()}")
    data, out = args.demo_dir, args.out / args.name
    shards = sorted((data / "shards").glob("*-train"))
    stores = {split: sorted((data / "stores").glob(f"*_{split}.zarr")) for split in ("test", "train")}
    if not shards or not all(stores.values()):
        sys.exit(f"{data}: not an hmr demo folder (needs shards/*-train and stores/*_test.zarr, *_train.zarr)")
    body = data / "body_model"
    overrides = ['data.source="shards"', f'data.shards=["{shards[0]}"]', f'train.body_model="{body}"',
                 *args.overrides]
    t0 = time.perf_counter()
    scalars = train("demo_cpu", overrides, out=out / "run", progress=True)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 scores the run
        return
    result = {"name": args.name, "overrides": args.overrides, "train_s": round(time.perf_counter() - t0, 1),
              "images_per_s": round(scalars.get("images_per_s", 0.0), 1)}
    trained, baseline = out / "run" / "last.pt", out / "run" / "mean_pose_baseline.pt"
    mean_pose_checkpoint(trained, baseline)
    options = EvalOptions(num_workers=0, body_model=str(body), worst=0, allow_other_dataset=True,
                          max_samples=args.samples)
    for split, paths in stores.items():
        for tag, ckpt in (("trained", trained), ("baseline", baseline)):
            summary = evaluate(ckpt, "smpl", paths[0], out / f"eval_{split}_{tag}", options)
            result[f"{split}_{tag}_PA-MPJPE"] = round(summary["PA-MPJPE"], 1)
        result[f"{split}_gain"] = round(1 - result[f"{split}_trained_PA-MPJPE"] / result[f"{split}_baseline_PA-MPJPE"], 3)
    print(json.dumps(result), flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
