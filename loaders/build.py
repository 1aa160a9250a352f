"""Where training data is assembled and mixed: from "what to train on" to a loader of batches.

``spec`` is a mix preset (``"mix2"``), a mix file (``.toml`` / ``.json``), shard-set folders
(``["shards/h36m-train", ...]``, equal ratios unless ``ratios`` is given), or sources already
resolved (``[(ShardSet, ratio), ...]``). :func:`build_loader` streams them mixed by ratio;
in resampled mode (training) an epoch is one pass, on average, over *every* source's samples
(their sum), split over the ranks; in finite mode one set's shards are read once per epoch,
split over ranks × workers, and :func:`exact_epoch_batches` says where every rank's epoch
ends (training with ``data.resampled = false``). :func:`batches_from_step` turns the loader into the endless
stream a training run consumes, resumable at any step. The trainer's configs come through
here (:mod:`hmr.training.data` only maps a config onto these arguments).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from hmr.core.errors import ConfigError
from loaders.augment import SmplRootModel
from loaders.mixes import MIXES, load_mix, resolve_mix
from loaders.shard import INDEX_NAME, ShardSet, is_remote, load_shard_set
from loaders.stream import (EpochLoader, ShardStream, StreamConfig, batches_per_epoch, finite_batches_per_epoch,
                            placement)

Spec = str | os.PathLike | Sequence[str | os.PathLike] | Sequence[tuple[ShardSet, float]]


def resolve_sources(spec: Spec, shard_root: str | os.PathLike | None = None,
                    ratios: Sequence[float] | None = None,
                    aliases: dict[str, str] | None = None) -> list[tuple[ShardSet, float]]:
    """``[(ShardSet, ratio), ...]`` for a mix name / file (needs ``shard_root``), set folders,
    or resolved sources (returned as they are)."""
    if not isinstance(spec, (str, os.PathLike)) and spec and all(isinstance(s, tuple) for s in spec):
        return [(sset, float(ratio)) for sset, ratio in spec]
    if isinstance(spec, str) and (spec in MIXES or spec.endswith((".toml", ".json"))):
        if shard_root is None:
            raise ConfigError(f"mix '{spec}' needs the shard folder (shard_root) to find its sets")
        return resolve_mix(load_mix(spec), shard_root, aliases)
    entries = [spec] if isinstance(spec, (str, os.PathLike)) else spec
    # URL prefixes (http(s)://, s3://, gs://) are read as given; local entries are paths.
    paths = [p if isinstance(p, str) and is_remote(p) else Path(p) for p in entries]
    if shard_root is not None and is_remote(str(shard_root)):  # bare names under a URL prefix
        paths = [p if isinstance(p, str) or p.is_absolute() else str(shard_root).rstrip("/") + "/" + p.as_posix()
                 for p in paths]
    elif shard_root is not None:  # bare set names live under shard_root
        paths = [p if isinstance(p, str) or p.is_absolute() or (p / INDEX_NAME).exists()
                 else Path(shard_root) / p for p in paths]
    sets = [load_shard_set(p) for p in paths]
    weights = list(ratios) if ratios is not None else [1.0] * len(sets)
    if len(weights) != len(sets) or any(w <= 0 for w in weights):
        raise ConfigError(f"need one positive ratio per shard set ({len(sets)} sets, ratios {weights})")
    total = sum(weights)
    return [(s, w / total) for s, w in zip(sets, weights)]


def build_loader(spec: Spec, cfg: StreamConfig | None = None, *,
                 shard_root: str | os.PathLike | None = None, ratios: Sequence[float] | None = None,
                 epoch_batches: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 rank: int | None = None, world_size: int | None = None,
                 smpl_root: SmplRootModel | None = None, aliases: dict[str, str] | None = None) -> EpochLoader:
    """An :class:`EpochLoader` over the mixed sources. In resampled mode the epoch defaults to
    one pass over the sum of the sources' samples, split over ``world_size`` ranks; in finite
    mode it runs until every shard was read once."""
    cfg = cfg or StreamConfig()
    sources = resolve_sources(spec, shard_root, ratios, aliases)
    stream = ShardStream(sources, cfg, rank=rank, world_size=world_size, smpl_root=smpl_root)
    if epoch_batches is None and cfg.resampled:
        world = placement(rank, world_size).world_size
        epoch_batches = batches_per_epoch(sum(s.num_samples for s, _ in sources), cfg.batch_size, world)
    return EpochLoader(stream, epoch_batches, num_workers=num_workers, pin_memory=pin_memory)


def exact_epoch_batches(sources: Sequence[tuple[ShardSet, float]], batch_size: int, world_size: int = 1,
                        num_workers: int = 0) -> int:
    """Epoch length (batches per rank) of finite-mode training on one shard set: each epoch
    reads every shard once, split over ranks × workers, and every rank stops after the same
    number of batches (:func:`loaders.stream.finite_batches_per_epoch`). A mix has no such
    epoch: its ratios, not its sizes, decide what is read."""
    if len(sources) != 1:
        raise ConfigError(f"an exact epoch (data.resampled = false) reads one shard set, not {len(sources)}: "
                          "train a mix with resampled streams")
    sset = sources[0][0]
    return finite_batches_per_epoch([int(s["num_samples"]) for s in sset.shards], batch_size, world_size,
                                    num_workers)


def batches_from_step(loader: EpochLoader, start_step: int = 0) -> Iterator[dict]:
    """Batches of epoch after epoch, starting at batch ``start_step`` of the whole run: epoch
    ``start_step // len(loader)``, after its first ``start_step % len(loader)`` batches (a
    resumed run continues its data stream exactly)."""
    epoch, skip = divmod(start_step, len(loader))
    while True:
        loader.set_epoch(epoch, skip)
        yield from loader
        epoch, skip = epoch + 1, 0
