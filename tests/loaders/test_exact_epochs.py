"""Exact epochs (training with ``data.resampled = false``): one set's shards dealt over ranks ×
workers, every rank stopping after the same number of batches; in one process, rank by rank
(tests/hmr/training/test_multinode.py runs the same under torchrun on 2 "nodes")."""

from __future__ import annotations

import pytest

from hmr.core.errors import ConfigError, HmrError
from loaders.build import batches_from_step, build_loader, exact_epoch_batches
from loaders.shard import ShardConfig, load_shard_set, shard_store
from loaders.stream import StreamConfig, finite_batches_per_epoch
from tests.fixtures.loaders import pinhole_store


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("exact")
    store = pinhole_store(out, n=24, seed=4, dataset="exact")
    return load_shard_set(shard_store(store, out / "shards", ShardConfig(samples_per_shard=4, crop_size=64),
                                      progress=False))


def test_epoch_length_is_what_the_poorest_worker_can_make():
    assert finite_batches_per_epoch([4] * 6, 4, world_size=3) == 2
    # 2 places, 2 shards each at least: the poorest gets the 3 and a 4 -> 7 samples, 3 batches
    assert finite_batches_per_epoch([4, 4, 4, 3], 2, world_size=2) == 3
    assert finite_batches_per_epoch([4] * 8, 4, world_size=2, num_workers=2) == 2 * 2
    with pytest.raises(HmrError, match="3 shards cannot feed 2 ranks × 2 workers"):
        finite_batches_per_epoch([4] * 3, 4, world_size=2, num_workers=2)
    with pytest.raises(HmrError, match="fewer than a batch"):
        finite_batches_per_epoch([4] * 4, 8, world_size=4)


def test_a_mix_has_no_exact_epoch(shard_set):
    with pytest.raises(ConfigError, match="one shard set"):
        exact_epoch_batches([(shard_set, 0.5), (shard_set, 0.5)], 4, 2)


def _keys(shard_set, rank: int, world: int, start_step: int, steps: int, workers: int = 0) -> list[list[str]]:
    cfg = StreamConfig(out_size=32, batch_size=4, shuffle_buffer=4, resampled=False, train=True, seed=9)
    per_epoch = exact_epoch_batches([(shard_set, 1.0)], 4, world, workers)
    loader = build_loader([(shard_set, 1.0)], cfg, rank=rank, world_size=world, num_workers=workers,
                          epoch_batches=per_epoch)
    stream = batches_from_step(loader, start_step)
    return [next(stream)["key"] for _ in range(steps)]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_sample_once_per_epoch_over_the_ranks_and_exact_resume(shard_set, workers):
    world = 3 if workers == 0 else 1  # 6 shards: 3 ranks × 1, or 1 rank × 2 workers (3 shards each)
    per_epoch = exact_epoch_batches([(shard_set, 1.0)], 4, world, workers)
    assert per_epoch == 6 // world
    runs = {rank: _keys(shard_set, rank, world, 0, 2 * per_epoch, workers) for rank in range(world)}
    everything = sorted(f"exact-train_{i:09d}" for i in range(24))  # the keys hmr shard writes
    for epoch in range(2):
        seen = sorted(k for rank in range(world) for batch in runs[rank][epoch * per_epoch:(epoch + 1) * per_epoch]
                      for k in batch)
        assert seen == everything, f"epoch {epoch}"
    assert runs[0][:per_epoch] != runs[0][per_epoch:]
    # a run resumed at step 1 of epoch 1 draws what the uninterrupted one drew from there
    assert _keys(shard_set, 0, world, per_epoch + 1, per_epoch - 1, workers) == runs[0][per_epoch + 1:]


@pytest.mark.parametrize("resampled", [True, False])
def test_resume_at_a_batch_that_is_not_worker_0s(shard_set, resampled):
    """DataLoader workers take turns from worker 0; after 3 batches of 2 workers the next one
    is worker 1's, so a resumed stream must not start with worker 0's."""
    from loaders.stream import EpochLoader, ShardStream

    cfg = StreamConfig(out_size=32, batch_size=2, shuffle_buffer=4, resampled=resampled, seed=2)

    def loader() -> EpochLoader:
        return EpochLoader(ShardStream([(shard_set, 1.0)], cfg, rank=0, world_size=1), 8, num_workers=2)

    full = [b["key"] for b in loader()]
    for k in (1, 3, 5):
        resumed = loader()
        resumed.set_epoch(0, resume_batches=k)
        assert [b["key"] for b in resumed] == full[k:], k
