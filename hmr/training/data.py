"""A config's training data: what the network is fed, and the batch stream that feeds it.

:func:`input_config` is the network's :class:`~hmr.core.crop.InputConfig` for a config (its
``img_size``, ImageNet mean/std, the crop scale its shard sets were cut with): the trainer
gives it to the model, so checkpoints record it, and the shard batches are normalised with it.

:func:`build_batches` returns a callable ``start_step -> iterator of batches`` that the trainer
calls once (with the resumed step), so a resumed run continues its data stream exactly. Shards
are assembled and mixed in one place, :func:`loaders.build.build_loader` (an epoch: the sum of
the sets' samples; with ``data.resampled = false``, one exact pass over one set split over
the ranks); this module only maps the ``[data]`` table onto it. The shard stream's
callable also carries ``batches_per_epoch`` (SPIN merges its fits per epoch). Random bodies
(:mod:`hmr.training.random_batches`) need no shards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hmr.core.crop import DEFAULT_CROP_SCALE, InputConfig
from hmr.core.errors import ConfigError
from hmr.training.config import Config
from loaders.augment import AugmentConfig
from loaders.build import batches_from_step, build_loader, exact_epoch_batches, resolve_sources
from loaders.mixes import load_mix, resolve_mix
from loaders.occlusion import OcclusionConfig
from loaders.shard import is_remote, load_shard_set
from loaders.stream import StreamConfig


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
    data = config.data
    if data.shards:
        if any(is_remote(s) for s in data.shards):  # URL prefixes (docs/scale-out.md) stay strings
            return [(load_shard_set(s), 1.0 / len(data.shards)) for s in data.shards]
        return resolve_sources(list(data.shards))
    if data.mix:
        if not data.root:
            raise ConfigError("data.mix needs data.root (the folder holding the shard sets)")
        return resolve_mix(load_mix(data.mix), data.root)
    raise ConfigError("data.source = 'shards' needs data.mix (with data.root) or data.shards")


def training_crop_scale(config: Config, sources: list | None = None) -> float | None:
    """The shard sets' ``bbox_scale`` (None for random bodies, cropped by construction); sets
    sharded with different scales are refused: one network, one framing. ``sources``: the
    config's :func:`shard_sources` when the caller has them already."""
    if config.data.source != "shards":
        return None
    sources = shard_sources(config) if sources is None else sources
    scales = {float(sset.index.get("bbox_scale", DEFAULT_CROP_SCALE)) for sset, _ in sources}
    if len(scales) > 1:
        raise ConfigError(f"the shard sets were cropped with different bbox_scale values {sorted(scales)}: "
                          "reshard them with one (hmr shard --bbox-scale)")
    return scales.pop() if scales else None


def input_config(config: Config, sources: list | None = None) -> InputConfig:
    """What the network of ``config`` is fed: ``model.img_size`` crops, ImageNet mean/std, the
    crop scale of its shard sets (evaluation and prediction frame people the same way)."""
    return InputConfig(size_px=config.model.img_size, crop_scale=training_crop_scale(config, sources))


def _shard_batches(config: Config, rank: int, world_size: int) -> Callable[[int], Iterator[dict]]:
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
    net_input = input_config(config, sources)  # the sets resolved once
    stream_cfg = StreamConfig(out_size=net_input.size_px, mean=net_input.mean, std=net_input.std,
                              batch_size=t.batch_size, shuffle_buffer=data.shuffle_buffer, resampled=data.resampled,
                              seed=t.seed, train=data.augment, convention=data.convention, occlusion=occlusion,
                              augment=augment, cache_mb=data.cache_mb, decode_on=data.decode_on,
                              normalise_on_device=True)  # the trainer's move_batch normalises (or decodes)
    epoch = None if data.resampled else exact_epoch_batches(sources, t.batch_size, world_size, data.num_workers)
    loader = build_loader(sources, stream_cfg, num_workers=data.num_workers, pin_memory=t.device != "cpu",
                          rank=rank, world_size=world_size, epoch_batches=epoch)

    def stream(start_step: int) -> Iterator[dict]:
        return batches_from_step(loader, start_step)

    stream.batches_per_epoch = len(loader)  # type: ignore[attr-defined]  (SPIN merges its fits per epoch)
    return stream
