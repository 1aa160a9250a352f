"""Training batch streams from a config: WebDataset shards (the loaders) or random bodies (:mod:`hmr.training.random_batches`).

:func:`build_batches` returns a callable ``start_step -> iterator of batches`` that the trainer
calls once (with the resumed step), so a resumed run continues its data stream exactly:
for shards, epoch ``start_step // batches_per_epoch`` resumes after
``start_step % batches_per_epoch`` batches (:class:`loaders.stream.EpochLoader` skips them).
The shard stream's callable also carries ``batches_per_epoch`` (SPIN merges its fits per epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hmr.core.errors import ConfigError
from hmr.training.config import Config


def build_batches(config: Config, *, rank: int = 0, world_size: int = 1, body_model=None
                  ) -> Callable[[int], Iterator[dict]]:
    data = config.data
    if data.source == "random":
        from hmr.training.random_batches import RandomBodyBatches

        if body_model is None or any(b.device.type != "cpu" for b in body_model.buffers()):
            from hmr.core.body.smpl import load_body_model  # labels are made on the CPU, once

            body_model = load_body_model(config.train.body_model or None)
        return RandomBodyBatches(body_model, config.train.batch_size, num_distinct=data.random_batches,
                                seed=config.train.seed + 7919 * rank, crop_px=config.model.img_size,
                                focal_length_px=config.model.focal_length_px, convention=data.convention)
    if data.source == "shards":
        return _shard_batches(config, rank, world_size)
    raise ConfigError(f"data.source = {data.source!r}: choose shards or random")


def shard_sources(config: Config) -> list:
    """``[(ShardSet, ratio), ...]`` of a shards config (``data.shards`` or ``data.mix``)."""
    from loaders.mixes import load_mix, resolve_mix
    from loaders.shard import load_shard_set

    data = config.data
    if data.shards:
        return [(load_shard_set(p), 1.0 / len(data.shards)) for p in data.shards]
    if data.mix:
        if not data.root:
            raise ConfigError("data.mix needs data.root (the folder holding the shard sets)")
        return resolve_mix(load_mix(data.mix), data.root)
    raise ConfigError("data.source = 'shards' needs data.mix (with data.root) or data.shards")


def _shard_batches(config: Config, rank: int, world_size: int) -> Callable[[int], Iterator[dict]]:
    from loaders.augment import AugmentConfig
    from loaders.occlusion import OcclusionConfig
    from loaders.stream import EpochLoader, ShardStream, StreamConfig, batches_per_epoch

    data, t = config.data, config.train
    sources = shard_sources(config)
    try:
        occlusion = OcclusionConfig(**data.occlusion)
    except TypeError as exc:
        raise ConfigError(f"data.occlusion: {exc}") from None
    try:
        augment = AugmentConfig(**data.augmentation)
    except TypeError as exc:
        raise ConfigError(f"data.augmentation: {exc}") from None
    stream_cfg = StreamConfig(out_size=config.model.img_size, batch_size=t.batch_size,
                              shuffle_buffer=data.shuffle_buffer, resampled=True, seed=t.seed,
                              train=data.augment, convention=data.convention, occlusion=occlusion,
                              augment=augment, cache_mb=data.cache_mb)
    dataset = ShardStream(sources, stream_cfg, rank=rank, world_size=world_size)
    per_epoch = batches_per_epoch(sum(s.num_samples for s, _ in sources), t.batch_size, world_size)
    loader = EpochLoader(dataset, per_epoch, num_workers=data.num_workers,
                         pin_memory=t.device != "cpu")

    def stream(start_step: int) -> Iterator[dict]:
        epoch, skip = divmod(start_step, per_epoch)
        while True:
            loader.set_epoch(epoch, skip)
            yield from loader
            epoch, skip = epoch + 1, 0

    stream.batches_per_epoch = per_epoch  # type: ignore[attr-defined]  (SPIN merges its fits per epoch)
    return stream
