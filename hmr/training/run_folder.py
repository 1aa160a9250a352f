"""A training run's folder: ``last.pt``, the periodic ``step_N.pt`` copies and their pruning,
and the RNG state a checkpoint carries for exact resume.

The checkpoint file itself (format, atomic save, ``weights_only`` load, rebuilding the model)
is the model's: :mod:`hmr.models.checkpoint`.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

LAST = "last.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(value: Any) -> Any:
    # weights_only loading may return lists where tuples were saved: random.setstate needs tuples
    if isinstance(value, (list, tuple)):
        return tuple(_to_tuple(v) for v in value)
    return value


def step_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the periodic checkpoints in ``run_dir``, oldest first."""
    found = []
    for p in Path(run_dir).glob("step_*.pt"):
        m = _STEP_FILE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest periodic checkpoints (``last.pt`` is never deleted)."""
    if keep <= 0:
        return
    for _, p in step_checkpoints(run_dir)[:-keep]:
        p.unlink(missing_ok=True)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    last = Path(run_dir) / LAST
    if last.is_file():
        return last
    steps = step_checkpoints(run_dir)
    return steps[-1][1] if steps else None
