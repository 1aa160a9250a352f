"""Run logs: every logged scalar goes to ``metrics.jsonl`` and to TensorBoard.

``metrics.jsonl`` holds one JSON object per logged step: ``{"step": 100, "time": <unix s>,
"loss": ..., "lr": ..., ...}``. On resume from step ``k`` the records after ``k`` (written by
the killed run after its last checkpoint) are dropped, and TensorBoard is told to purge them,
so both logs show one continuous curve.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from hmr.core.utils.atomic import atomic_write_text

JSONL = "metrics.jsonl"


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines log; a line cut by a kill ends it (everything before it
    is intact); a missing file has none."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def read_metrics(run_dir: str | Path) -> list[dict]:
    return read_jsonl(Path(run_dir) / JSONL)


class RunLogger:
    """JSONL + TensorBoard writer; a no-op on ranks other than 0."""

    def __init__(self, run_dir: str | Path, *, enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.path = Path(run_dir) / JSONL
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif self.path.exists():
            self.path.unlink()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tb"),
                                     purge_step=None if resume_step is None else resume_step + 1)
        except ImportError:  # tensorboard is a dependency; tolerate its absence in odd installs
            self._tb = None
        self._fh = open(self.path, "a", encoding="utf-8")

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if math.isfinite(float(v)) else str(float(v))) for k, v in scalars.items()}
        self._fh.write(json.dumps({"step": int(step), "time": round(time.time(), 3), **clean}) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, float(value), int(step))

    def close(self) -> None:
        if not self.enabled:
            return
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
