"""One call from "what to train on" to an epoch-sized loader of batches.

``spec`` is a mix preset (``"mix2"``), a mix file (``.toml`` / ``.json``), or shard-set
folders (``["shards/h36m-train", ...]``, equal ratios unless ``ratios`` is given).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hmr.core.errors import ConfigError
from loaders.augment import SmplRootModel
from loaders.mixes import MIXES, load_mix, resolve_mix
from loaders.shard import INDEX_NAME, ShardSet, load_shard_set
from loaders.stream import EpochLoader, ShardStream, StreamConfig, batches_per_epoch


def resolve_sources(spec: str | Sequence[str | os.PathLike], shard_root: str | os.PathLike | None = None,
                    ratios: Sequence[float] | None = None,
                    aliases: dict[str, str] | None = None) -> list[tuple[ShardSet, float]]:
    """``[(ShardSet, ratio), ...]`` for a mix name / file (needs ``shard_root``) or set folders."""
    if isinstance(spec, str) and (spec in MIXES or spec.endswith((".toml", ".json"))):
        if shard_root is None:
            raise ConfigError(f"mix '{spec}' needs the shard folder (shard_root) to find its sets")
        return resolve_mix(load_mix(spec), shard_root, aliases)
    paths = [Path(p) for p in ([spec] if isinstance(spec, (str, os.PathLike)) else spec)]
    if shard_root is not None:  # bare set names live under shard_root
        paths = [p if p.is_absolute() or (p / INDEX_NAME).exists() else Path(shard_root) / p for p in paths]
    sets = [load_shard_set(p) for p in paths]
    weights = list(ratios) if ratios is not None else [1.0] * len(sets)
    if len(weights) != len(sets) or any(w <= 0 for w in weights):
        raise ConfigError(f"need one positive ratio per shard set ({len(sets)} sets, ratios {weights})")
    total = sum(weights)
    return [(s, w / total) for s, w in zip(sets, weights)]


def build_loader(spec: str | Sequence[str | os.PathLike], cfg: StreamConfig | None = None, *,
                 shard_root: str | os.PathLike | None = None, ratios: Sequence[float] | None = None,
                 epoch_batches: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 rank: int | None = None, world_size: int | None = None,
                 smpl_root: SmplRootModel | None = None, aliases: dict[str, str] | None = None) -> EpochLoader:
    """An :class:`EpochLoader`; in resampled mode the epoch defaults to one pass over the
    largest source's samples, split over ``world_size`` ranks."""
    cfg = cfg or StreamConfig()
    sources = resolve_sources(spec, shard_root, ratios, aliases)
    stream = ShardStream(sources, cfg, rank=rank, world_size=world_size, smpl_root=smpl_root)
    if epoch_batches is None and cfg.resampled:
        from loaders.stream import placement

        world = placement(rank, world_size).world_size
        epoch_batches = batches_per_epoch(max(s.num_samples for s, _ in sources), cfg.batch_size, world)
    return EpochLoader(stream, epoch_batches, num_workers=num_workers, pin_memory=pin_memory)
