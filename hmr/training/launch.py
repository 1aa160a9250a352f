"""``hmr train``: config → trainer → fit, with the run folder laid out for humans.

Run folder: ``config.toml`` (the resolved config, written at start), ``last.pt`` and
``step_*.pt`` checkpoints, ``metrics.jsonl``, ``tb/`` (TensorBoard). Under ``torchrun`` every
process calls :func:`train`; rank 0 writes the folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hmr.core.utils.atomic import atomic_write_text
from hmr.training.config import Config, load_config
from hmr.training.data import build_batches
from hmr.training.trainer import Trainer


def config_toml(config: Config) -> str:
    import tomli_w

    data = config.to_dict()
    return tomli_w.dumps({k: v for k, v in data.items() if v is not None})


def train(config_name: str, overrides: list[str] | None = None, *, out: str | os.PathLike | None = None,
          resume: bool = False, max_steps: int | None = None, progress: bool = True) -> dict[str, float]:
    """Train the named config (or config file); returns the last logged scalars (on rank 0;
    other processes of a distributed run return an empty dict)."""
    config = load_config(config_name, overrides)
    run_dir = Path(out) if out else Path("runs") / config.name
    trainer = Trainer(config, run_dir, resume=resume)
    if trainer.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.toml", config_toml(config))
        report = trainer.model.init_report
        if report is not None:
            print(f"backbone init: {report.summary()}", file=sys.stderr)
        if trainer.step:
            print(f"resuming {run_dir} at step {trainer.step}", file=sys.stderr)
    batches = build_batches(config, rank=trainer.rank, world_size=trainer.world, body_model=trainer.body_model)
    last = trainer.fit(batches, max_steps=max_steps, progress=progress)
    return last if trainer.rank == 0 else {}
