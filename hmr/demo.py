"""``make demo`` / ``hmr demo``: the whole pipeline on synthetic data, on a laptop CPU.

This module is the application layer: it wires the packages together in the order data
flows (body model → synthetic raw data → verify → convert → inspect → shard → train →
evaluate) and writes everything under one output folder. Each stage is one library call;
nothing here re-implements a stage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hmr.errors import HmrError


@dataclass
class DemoConfig:
    out: Path = Path("demo_out")
    n_train: int = 600
    n_test: int = 120
    image_size: int = 128
    seed: int = 0
    workers: int | None = None
    train_steps: int = 0  # 0: the trainer's demo default
    quick: bool = False  # tiny sizes, for the test suite

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.quick:
            self.n_train, self.n_test, self.image_size = 24, 12, 64


@dataclass
class DemoReport:
    out: Path
    stages: list[tuple[str, float, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        summary = result if isinstance(result, str) else ""
        self.stages.append((name, seconds, summary))
        print(f"   {name}: {seconds:.1f} s" + (f" — {summary}" if summary else ""), flush=True)
        return result

    def table(self) -> str:
        rows = ["| stage | seconds | result |", "| --- | ---: | --- |"]
        rows += [f"| {n} | {s:.1f} | {r} |" for n, s, r in self.stages]
        return "\n".join(rows)


def run_demo(config: DemoConfig) -> DemoReport:
    from converters.common import ConvertOptions, run_conversion
    from hmr.body import write_mannequin
    from hmr.schema import open_store
    from hmr.schema.inspect import draw_samples, summarize
    from hmr.synth.generate import MANIFEST_RELPATH, SynthConfig, generate
    from manifests import verify_source

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    report = DemoReport(out)
    body_dir, raw, stores = out / "body_model", out / "raw_synth", out / "stores"

    def body() -> str:
        write_mannequin(body_dir)
        return f"mannequin SMPL files in {body_dir}"

    report.stage("body model", body)

    def render(split: str, n: int, tail: float) -> Callable[[], str]:
        def run() -> str:
            generate(raw, SynthConfig(n=n, split=split, image_size=config.image_size, seed=config.seed,
                                      tail=tail, body_model=str(body_dir), workers=config.workers))
            return f"{n} images at {config.image_size}px"
        return run

    report.stage("render train", render("train", config.n_train, 5.0))
    # The test set draws pose rarity uniformly: rare poses are not rare there.
    report.stage("render test", render("test", config.n_test, 0.0))

    def verify() -> str:
        result = verify_source(str(raw / MANIFEST_RELPATH), raw, progress=False)
        if not result.ok:
            raise HmrError("synthetic data failed verification", path=raw)
        return "all files match the manifest"

    report.stage("verify", verify)
    store_paths = {}
    for split in ("train", "test"):
        def convert(split: str = split) -> str:
            res = run_conversion("synth", raw, stores, split=split, overwrite=True,
                                 options=ConvertOptions(body_model=str(body_dir)), progress=False)
            store_paths[split] = res.store
            return f"{res.num_samples} samples -> {res.store.name}"
        report.stage(f"convert {split}", convert)

    def inspect() -> str:
        store = open_store(store_paths["train"])
        summary = summarize(store)
        picture = draw_samples(store, out / "train_samples.png", count=6)
        report.files["samples picture"] = str(picture)
        return summary.validation

    report.stage("inspect", inspect)
    _shard(report, config, store_paths)
    (out / "demo_report.md").write_text("# hmrkit demo\n\n" + report.table() + "\n")
    (out / "demo_report.json").write_text(json.dumps({"stages": report.stages, "files": report.files}, indent=1))
    return report


def _shard(report: DemoReport, config: DemoConfig, store_paths: dict[str, Path]) -> None:
    from loaders import ShardConfig, load_shard_set, shard_store

    shards = config.out / "shards"
    for split, path in store_paths.items():
        def run(path: Path = path) -> str:
            set_dir = shard_store(path, shards, ShardConfig(crop_size=config.image_size * 2 if not config.quick
                                                            else 96, workers=1), progress=False)
            shard_set = load_shard_set(set_dir)
            return f"{shard_set.num_samples} crops in {len(shard_set.shards)} shard(s)"
        report.stage(f"shard {split}", run)
