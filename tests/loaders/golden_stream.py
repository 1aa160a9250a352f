"""Batches whose content must not change when the loader gets faster: the recipe and the digests.

:func:`golden_batches` builds two small generated shard sets (the pinhole scenes of
:mod:`tests.fixtures.loaders`), streams a mix of them with every augmentation on, without
augmentation, channels-last and in another keypoint convention, and reduces each batch to
one SHA-256 per field (the exact bytes of every tensor, its dtype and shape, and the keys).

``tests/loaders/data/golden_stream.json`` holds the digests computed by the loader as it was
before the speed work of issue 20 (webdataset's tar reader, numpy label math, float32
normalisation in ``collate``); ``test_golden_stream.py`` compares today's batches with it.
Regenerate only for an intended change of content:
``.venv/bin/python -m tests.loaders.golden_stream tests/loaders/data/golden_stream.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from loaders.augment import AugmentConfig
from loaders.shard import ShardConfig, load_shard_set, shard_store
from loaders.stream import EpochLoader, ShardStream, StreamConfig
from tests.fixtures.loaders import pinhole_store

OUT = 48
VARIANTS = {
    "train": dict(train=True, augment=AugmentConfig(translate_frac=0.1, random_crop_prob=0.5)),
    "eval": dict(train=False),
    "channels_last": dict(train=True, channels_last=True),
    "convention": dict(train=True, convention="smpl_49"),
}


def shard_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every shard tar (the batches are only comparable if the shards are the same)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob("*/shard-*.tar"))}


def make_shards(out: Path) -> Path:
    for name, n, seed in (("gold-a", 20, 11), ("gold-b", 12, 12)):
        store = pinhole_store(out, n=n, seed=seed, dataset=name)
        shard_store(store, out / "shards", ShardConfig(samples_per_shard=5, crop_size=64), progress=False)
    return out / "shards"


def batch_digest(batch: dict) -> dict[str, str]:
    out = {}
    for name, value in sorted(batch.items()):
        h = hashlib.sha256()
        if isinstance(value, torch.Tensor):
            value = value.contiguous()  # same values, whatever the memory layout
            h.update(f"{value.dtype} {tuple(value.shape)}".encode())
            h.update(value.numpy().tobytes())
        else:
            h.update(json.dumps(value).encode())
        out[name] = h.hexdigest()
    return out


def golden_batches(shard_root: Path, normalise=None, **extra) -> dict:
    """``{variant: [batch digests]}`` for three batches of 8 per variant. ``normalise``: a
    function applied to each batch before hashing (a device normalisation under test);
    ``extra``: more :class:`StreamConfig` fields for every variant."""
    sets = [(load_shard_set(shard_root / "gold-a-train"), 2.0), (load_shard_set(shard_root / "gold-b-train"), 1.0)]
    result = {}
    for name, kw in VARIANTS.items():
        cfg = StreamConfig(out_size=OUT, batch_size=8, shuffle_buffer=6, seed=5, **kw, **extra)
        batches = list(EpochLoader(ShardStream(sets, cfg), 3))
        result[name] = [batch_digest(normalise(b) if normalise else b) for b in batches]
    return result


def main(path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_shards(Path(tmp))
        record = {"shards": shard_digests(root), "batches": golden_batches(root)}
    Path(path).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    np.random.seed(0)
    main(sys.argv[1])
