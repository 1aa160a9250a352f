"""Which samples each process trained on, step by step (``train.log_samples``).

Every process of a run (every rank of every node) appends one JSON line per step to
``samples/rank_RRRRR.jsonl`` in the run folder: ``{"step": 12, "keys": ["<shard-set key>", ...]}``,
the ``key`` list of the batch it trained that step on. It answers the questions a multi-node
run raises — did every sample come once per epoch, did two ranks read the same shard, did a
resumed run pick up the stream where the killed one stopped — by reading files, not by trust.
On resume from step ``k`` the lines after ``k`` (written by the killed run after its last
checkpoint) are dropped, as :mod:`hmr.training.logs` does for the metrics, so each file reads
as one run.
"""

from __future__ import annotations

import json
from pathlib import Path

from hmr.core.utils.atomic import atomic_write_text
from hmr.training.logs import read_jsonl

FOLDER = "samples"


def sample_log_path(run_dir: str | Path, rank: int) -> Path:
    return Path(run_dir) / FOLDER / f"rank_{rank:05d}.jsonl"


def read_sample_log(run_dir: str | Path, rank: int) -> list[dict]:
    """``[{"step": ..., "keys": [...]}, ...]`` of one rank; a line cut by a kill ends it."""
    return read_jsonl(sample_log_path(run_dir, rank))


class SampleLog:
    """One rank's writer; ``resume_step``: the step a resumed run continues from."""

    def __init__(self, run_dir: str | Path, rank: int, *, resume_step: int | None = None):
        self.path = sample_log_path(run_dir, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            kept = [r for r in read_sample_log(run_dir, rank) if r["step"] <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a", encoding="utf-8")

    def log(self, step: int, batch: dict) -> None:
        """Record the keys of ``batch`` (the loaders' ``key`` list) as trained at ``step``."""
        keys = batch.get("key")
        if keys is None:  # random bodies carry no keys: their index in the batch stands in
            keys = list(range(len(batch["img"])))
        self._fh.write(json.dumps({"step": int(step), "keys": [str(k) for k in keys]}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
