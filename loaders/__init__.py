"""Schema stores → WebDataset shards → mixed, augmented, streaming training batches.

>>> from loaders import ShardConfig, shard_store, load_shard_set, ShardStream, StreamConfig, EpochLoader
>>> set_dir = shard_store("stores/h36m_train.zarr", "shards/", ShardConfig(workers=8))
>>> loader = build_loader("mix2", StreamConfig(batch_size=64), shard_root="shards/", num_workers=8)
>>> for epoch in range(10):
...     loader.set_epoch(epoch)
...     for batch in loader: ...                                   # dict of tensors, see docs/loaders.md

Modules: :mod:`loaders.sample` (one crop and its labels), :mod:`loaders.augment` (geometric
augmentation, SMPL flip), :mod:`loaders.occlusion` (the benchmark's occlusion-style
augmentations), :mod:`loaders.shard` (writing / verifying shards), :mod:`loaders.stream` (the
streaming pipeline), :mod:`loaders.batch` (decoding, the batch contract, collate),
:mod:`loaders.mixes` (dataset mixes), :mod:`loaders.build` (where training data is assembled
and mixed: spec → loader, an epoch = the sum of the sets' samples). The crop geometry and the
input normalisation are the network's, shared with evaluation: :mod:`hmr.core.crop`.
"""

from loaders.augment import AugmentConfig, SmplRootModel, flip_smpl_pose
from loaders.build import batches_from_step, build_loader, resolve_sources
from loaders.mixes import MIXES, Mix, MixComponent, find_shard_sets, load_mix, resolve_mix
from loaders.occlusion import OCCLUSION_AUGMENTATIONS, OccluderBank, OcclusionConfig
from loaders.shard import ShardConfig, ShardSet, load_shard_set, shard_store
from loaders.shard_check import verify_shard_set
from loaders.stream import STATS, EpochLoader, ShardStream, StreamConfig, batches_per_epoch

__all__ = [
    "AugmentConfig", "SmplRootModel", "flip_smpl_pose", "batches_from_step", "build_loader", "resolve_sources",
    "MIXES", "Mix", "MixComponent", "find_shard_sets",
    "load_mix", "resolve_mix", "OCCLUSION_AUGMENTATIONS", "OccluderBank", "OcclusionConfig", "ShardConfig",
    "ShardSet", "load_shard_set", "shard_store", "verify_shard_set", "STATS", "EpochLoader", "ShardStream",
    "StreamConfig", "batches_per_epoch",
]
