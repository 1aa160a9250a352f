"""Streaming: worker / rank splitting, determinism and resume, mixes, corrupt samples, contract."""

from __future__ import annotations

import io
import json
import logging
import tarfile

import numpy as np
import pytest
import torch

from hmr.core.errors import HmrError
from hmr.core.geometry import project_points
from loaders import stream
from loaders.batch import read_npy
from loaders.shard import ShardConfig, load_shard_set, shard_store
from loaders.stream import (
    EpochLoader, LoaderStats, ShardStream, StreamConfig, component_samples, mix_samples, placement,
)
from loaders.augment import AugmentConfig
from loaders.occlusion import OCCLUSION_AUGMENTATIONS, OcclusionConfig
from tests.fixtures.loaders import COCO_DIR, pinhole_store

OUT = 64


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream")
    for name, n, seed in (("pina", 48, 1), ("pinb", 24, 2), ("pinc", 24, 3)):
        store = pinhole_store(out, n=n, seed=seed, dataset=name)
        shard_store(store, out / "shards", ShardConfig(samples_per_shard=4, crop_size=96), progress=False)
    return out / "shards"


@pytest.fixture(autouse=True)
def fresh_stats(monkeypatch):
    monkeypatch.setattr(stream, "STATS", LoaderStats())


def sset(root, name):
    return load_shard_set(root / f"{name}-train")


def finite_cfg(**kw):
    base = dict(out_size=OUT, batch_size=4, shuffle_buffer=8, resampled=False, drop_last=False, train=False)
    return StreamConfig(**{**base, **kw})


def keys_of(loader):
    return [k for batch in loader for k in batch["key"]]


def test_finite_epoch_splits_shards_over_ranks_and_workers(shard_root):
    a = sset(shard_root, "pina")
    per_rank = []
    for rank in range(2):
        ds = ShardStream([(a, 1.0)], finite_cfg(), rank=rank, world_size=2)
        per_rank.append(keys_of(EpochLoader(ds, None, num_workers=2)))
    everything = per_rank[0] + per_rank[1]
    assert len(everything) == len(set(everything)) == a.num_samples  # each sample exactly once
    assert set(per_rank[0]).isdisjoint(per_rank[1])
    assert abs(len(per_rank[0]) - len(per_rank[1])) <= 8


def test_too_few_shards_for_ranks_times_workers_is_an_error(shard_root):
    b = sset(shard_root, "pinb")  # 6 shards
    ds = ShardStream([(b, 1.0)], finite_cfg(), rank=0, world_size=4)
    with pytest.raises(HmrError, match="6 shards cannot feed 4 ranks × 2 workers"):
        keys_of(EpochLoader(ds, None, num_workers=2))


def test_placement_reads_the_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    p = placement(None, None)
    assert (p.rank, p.world_size, p.worker, p.num_workers) == (3, 8, 0, 1)
    assert placement(1, 2).rank == 1


def _resampled(root, **kw):
    cfg = StreamConfig(out_size=OUT, batch_size=4, shuffle_buffer=16, seed=5, **kw)
    return ShardStream([(sset(root, "pina"), 0.5), (sset(root, "pinb"), 0.5)], cfg)


@pytest.mark.parametrize("workers", [0, 2])
def test_resampled_stream_is_seeded_and_resumes_exactly(shard_root, workers):
    ds = _resampled(shard_root)
    full = list(EpochLoader(ds, 6, num_workers=workers))
    again = list(EpochLoader(_resampled(shard_root), 6, num_workers=workers))
    assert [b["key"] for b in full] == [b["key"] for b in again]
    assert torch.equal(full[-1]["img"], again[-1]["img"])
    loader = EpochLoader(_resampled(shard_root), 6, num_workers=workers)
    loader.set_epoch(0, resume_batches=4)
    tail = list(loader)
    assert len(tail) == 2
    assert [b["key"] for b in tail] == [b["key"] for b in full[4:]]
    assert torch.equal(tail[-1]["img"], full[-1]["img"])  # same augmentation draws too
    loader.set_epoch(1)
    assert [b["key"] for b in loader] != [b["key"] for b in full]


def test_mix_ratios_hold_statistically(shard_root):
    sets = [sset(shard_root, n) for n in ("pina", "pinb", "pinc")]
    ratios = np.array([0.5, 0.3, 0.2])
    cfg = StreamConfig(shuffle_buffer=4, seed=11)
    where = placement(0, 1)
    streams = [component_samples(s, c, cfg, 0, where) for c, s in enumerate(sets)]
    n = 3000
    drawn = [c for c, _ in zip((c for c, _ in mix_samples(streams, ratios, np.random.default_rng(0))), range(n))]
    counts = np.bincount(drawn, minlength=3)
    expected = ratios * n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 13.8, (counts, chi2)  # p = 0.001 for 2 degrees of freedom


def test_mixed_batches_carry_their_datasets(shard_root):
    ds = ShardStream([(sset(shard_root, "pina"), 0.8), (sset(shard_root, "pinb"), 0.2)],
                     StreamConfig(out_size=32, batch_size=25, shuffle_buffer=4, train=False, seed=3))
    names = [d for b in EpochLoader(ds, 16) for d in b["dataset"]]
    share = names.count("pina") / len(names)
    assert len(names) == 400
    assert abs(share - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 400), share


EVERYTHING_ON = dict(
    augment=AugmentConfig(translate_frac=0.1, random_crop_prob=0.8),
    occlusion=OcclusionConfig(**{n: 0.5 for n in OCCLUSION_AUGMENTATIONS if n != "random_crop"},
                              occluder_images=[str(COCO_DIR / "000000000785.jpg")]))


@pytest.mark.parametrize("extra", [{}, EVERYTHING_ON], ids=["default", "all_augmentations"])
def test_batch_contract_and_label_consistency_through_shards(shard_root, extra):
    cfg = StreamConfig(out_size=OUT, batch_size=16, shuffle_buffer=8, seed=1, **extra)
    b = next(iter(EpochLoader(ShardStream([(sset(shard_root, "pina"), 1.0)], cfg), 1)))
    k = sset(shard_root, "pina").num_keypoints
    shapes = {"img": (16, 3, OUT, OUT), "keypoints2d": (16, k, 3), "keypoints3d": (16, k, 4),
              "smpl_global_orient": (16, 3), "smpl_body_pose": (16, 69), "smpl_betas": (16, 10),
              "has_smpl": (16,), "smpl_transl": (16, 3), "has_smpl_transl": (16,), "cam_intrinsics": (16, 3, 3),
              "has_intrinsics": (16,), "crop_to_image": (16, 2, 3), "image_hw": (16, 2), "gender": (16,),
              "aug_rotation": (16, 3, 3), "aug_flip": (16,)}
    for name, shape in shapes.items():
        assert tuple(b[name].shape) == shape, name
    # The frame change is a rotation about the optical axis (identity when nothing was drawn).
    rot = b["aug_rotation"].double()
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(16, 3, 3),
                               atol=1e-5, rtol=0)
    assert torch.equal(rot[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(16, 3))
    assert b["aug_flip"].dtype == torch.bool
    assert b["img"].dtype == torch.float32 and -3 < float(b["img"].mean()) < 1
    assert len(b["key"]) == len(b["dataset"]) == 16
    kp2, kp3, cam = b["keypoints2d"].numpy(), b["keypoints3d"].numpy(), b["cam_intrinsics"].numpy()
    checked = 0
    for i in range(16):
        lab = kp2[i, :, 2] > 0
        # The crop spans pixels [-0.5, S - 0.5] (centres at integers): x_norm in [-1 - 1/S, 1 - 1/S].
        assert np.all((kp2[i, lab, :2] >= -1 - 1 / OUT - 1e-6) & (kp2[i, lab, :2] <= 1 - 1 / OUT + 1e-6))
        px = (kp2[i, lab, :2] + 1.0) * OUT / 2.0
        np.testing.assert_allclose(project_points(kp3[i, lab, :3], cam[i]), px, atol=0.02)
        # Joints labelled in 3D but projecting outside the crop got confidence 0 in 2D.
        outside = (kp3[i, :, 3] > 0) & ~lab
        if outside.any():
            p = project_points(kp3[i, outside, :3], cam[i])
            assert np.all(((p < -0.5) | (p > OUT - 0.5)).any(axis=1))
        checked += int(lab.sum())
    assert checked > 16


def test_other_convention_on_request(shard_root):
    cfg = finite_cfg(convention="spin_49")
    b = next(iter(EpochLoader(ShardStream([(sset(shard_root, "pinb"), 1.0)], cfg), 1)))
    assert tuple(b["keypoints2d"].shape) == (4, 49, 3) and tuple(b["keypoints3d"].shape) == (4, 49, 4)


def _rewrite_shard(path, mutate):
    """Rewrite a tar with ``mutate(key, ext, data) -> data | None`` applied to each member."""
    out = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            key, ext = m.name.split(".", 1)
            data = mutate(key, ext, src.extractfile(m).read())
            if data is None:
                continue
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    path.write_bytes(out.getvalue())


def test_corrupt_samples_are_skipped_counted_and_named(shard_root, tmp_path, caplog):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(shard_root / "pinb-train", root)
    tar = root / "shard-000000.tar"
    keys = sorted({m.split(".", 1)[0] for m in tarfile.open(tar).getnames()})

    def mutate(key, ext, data):
        if key == keys[0] and ext == "jpg":
            return b"\xff\xd8 not a jpeg"
        if key == keys[1] and ext == "kp.npy":
            buf = io.BytesIO()
            np.save(buf, np.zeros((3, 3), np.float32))
            return buf.getvalue()
        if key == keys[2] and ext == "json":
            return b"{broken"
        return data

    _rewrite_shard(tar, mutate)
    index = json.loads((root / "index.json").read_text())
    index["name"] = "broken"
    (root / "index.json").write_text(json.dumps(index))
    ds = ShardStream([(load_shard_set(root), 1.0)], finite_cfg())
    with caplog.at_level(logging.WARNING, logger="hmr.loaders"):
        got = keys_of(EpochLoader(ds, None))
    assert len(got) == 24 - 3 and not set(keys[:3]) & set(got)
    assert stream.STATS.corrupt == 3
    messages = " ".join(r.getMessage() for r in caplog.records)
    for key in keys[:3]:
        assert f"shard-000000.tar:{key}" in messages


def test_truncated_shard_is_reported_not_silently_shortened(shard_root, tmp_path, caplog):
    import shutil

    root = tmp_path / "trunc"
    shutil.copytree(shard_root / "pinb-train", root)
    tar = root / "shard-000001.tar"
    tar.write_bytes(tar.read_bytes()[: len(tar.read_bytes()) // 2])
    ds = ShardStream([(load_shard_set(root), 1.0)], finite_cfg())
    with caplog.at_level(logging.WARNING, logger="hmr.loaders"):
        got = keys_of(EpochLoader(ds, None))
    assert 20 <= len(got) < 24
    assert stream.STATS.bad_shards == 1
    assert any("shard-000001.tar" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)


def test_channels_last_batches_hold_the_same_values(shard_root):
    def first(channels_last):
        cfg = finite_cfg(channels_last=channels_last, train=True, seed=4)
        return next(iter(EpochLoader(ShardStream([(sset(shard_root, "pinb"), 1.0)], cfg), 1)))["img"]

    nchw, nhwc = first(False), first(True)
    assert nchw.is_contiguous() and nhwc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(nchw, nhwc)
    # ImageNet normalisation: a black pixel is -mean/std.
    black = torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    assert torch.allclose(nchw.amin(dim=(0, 2, 3)), black, atol=0.05)


@pytest.mark.parametrize("arr", [np.arange(21, dtype=np.float32).reshape(3, 7), np.ones(85, np.float32),
                                 np.arange(6, dtype=np.float64).reshape(2, 3), np.array([[1, 2]], dtype=">f4")])
def test_read_npy_matches_numpy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    out = read_npy(buf.getvalue())
    assert out.dtype == arr.dtype.newbyteorder("=") or out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


def test_read_npy_refuses_pickled_objects():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        read_npy(buf.getvalue())


def test_an_unreadable_resampled_set_fails_instead_of_hanging(shard_root, tmp_path):
    import shutil

    root = tmp_path / "gone"
    shutil.copytree(shard_root / "pinb-train", root)
    for tar in root.glob("*.tar"):
        tar.write_bytes(b"")
    ds = ShardStream([(load_shard_set(root), 1.0)], StreamConfig(out_size=OUT, batch_size=4, shuffle_buffer=4))
    with pytest.raises(HmrError, match="gave no sample"):
        next(iter(EpochLoader(ds, 2)))


def test_build_loader_from_folders_and_mixes(shard_root, tmp_path):
    from loaders.build import build_loader, resolve_sources

    loader = build_loader(["pina-train", "pinb-train"], StreamConfig(out_size=32, batch_size=8, shuffle_buffer=4),
                          shard_root=shard_root, ratios=[3, 1], world_size=2, rank=0)
    assert len(loader) == (48 + 24) // (8 * 2)  # an epoch: every set's samples once (their sum), over 2 ranks
    assert len(next(iter(loader))["key"]) == 8
    mix = tmp_path / "m.toml"
    mix.write_text('[[components]]\nset = "pinc-train"\nratio = 1\n[[components]]\nset = "pina-train"\nratio = 1\n')
    sources = resolve_sources(str(mix), shard_root)
    assert [s.name for s, _ in sources] == ["pinc-train", "pina-train"]
    with pytest.raises(HmrError, match="ratio"):
        resolve_sources(["pina-train"], shard_root, ratios=[1, 2])


def _epochs(ds, epochs: int) -> list[dict]:
    loader = EpochLoader(ds, None)
    out = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        out += list(loader)
    return out


def _count_opens(monkeypatch) -> list[str]:
    opened: list[str] = []
    real = stream.iter_shard

    def counting(url, expected=None):
        opened.append(url)
        return real(url, expected)

    monkeypatch.setattr(stream, "iter_shard", counting)
    return opened


@pytest.mark.parametrize("train", [False, True])
def test_sample_cache_gives_the_same_batches_and_opens_each_shard_once(shard_root, monkeypatch, train):
    """Three finite epochs: identical keys, images and labels with and without the cache (the
    augmentation draws too), and with it every shard is read from disk in the first epoch only."""
    a = sset(shard_root, "pina")  # 12 shards of 4
    opened = _count_opens(monkeypatch)
    plain = _epochs(ShardStream([(a, 1.0)], finite_cfg(train=train)), 3)
    assert len(opened) == 3 * len(a.shards)
    opened.clear()
    ds = ShardStream([(a, 1.0)], finite_cfg(train=train, cache_mb=64))
    cached = _epochs(ds, 3)
    assert len(opened) == len(a.shards)  # epochs 2 and 3 come from memory
    assert ds.cache.hits == 2 * a.num_samples and len(ds.cache.complete) == len(a.shards)
    assert [b["key"] for b in cached] == [b["key"] for b in plain]
    for got, want in zip(cached, plain):
        for name in ("img", "keypoints2d", "keypoints3d", "smpl_body_pose", "aug_flip"):
            assert torch.equal(got[name], want[name]), name


@pytest.mark.parametrize("train", [False, True])
def test_resampled_epochs_cut_mid_shard_decode_each_sample_once(shard_root, monkeypatch, train):
    """Training streams (resampled) end each epoch mid-shard, dropping the shuffle buffer: those
    samples were never cached, so their shard is read again later; its cached samples must not
    be decoded again, and the batches stay those of the uncached stream."""
    a = sset(shard_root, "pina")  # 12 shards of 4
    cfg = dict(out_size=OUT, batch_size=4, shuffle_buffer=8, resampled=True, train=train, seed=5)

    def run(cache_mb):
        decoded = []
        real = stream.decode_sample

        def counting(raw, num_keypoints):
            decoded.append((raw["__url__"], raw["__key__"]))
            return real(raw, num_keypoints)

        monkeypatch.setattr(stream, "decode_sample", counting)
        ds = ShardStream([(a, 1.0)], StreamConfig(**cfg, cache_mb=cache_mb))
        loader = EpochLoader(ds, 5)  # 20 samples an epoch: cuts inside shards
        batches = []
        for epoch in range(8):
            loader.set_epoch(epoch)
            batches += list(loader)
        return batches, decoded

    plain, plain_decoded = run(0)
    cached, decoded = run(64)
    assert len(decoded) == len(set(decoded)) < len(plain_decoded)  # each sample decoded once
    assert [b["key"] for b in cached] == [b["key"] for b in plain]
    for got, want in zip(cached, plain):
        for name in ("img", "keypoints2d", "smpl_body_pose", "aug_flip"):
            assert torch.equal(got[name], want[name]), name


def test_sample_cache_stays_within_its_budget(shard_root, monkeypatch):
    a = sset(shard_root, "pina")
    plain = _epochs(ShardStream([(a, 1.0)], finite_cfg()), 2)
    opened = _count_opens(monkeypatch)
    ds = ShardStream([(a, 1.0)], finite_cfg(cache_mb=1))
    ds.cache.max_bytes = 100 * 1024  # room for a few samples (~21 KiB each), not for the shard set
    cached = _epochs(ds, 2)
    assert 0 < ds.cache.nbytes <= 100 * 1024 and 0 < len(ds.cache.items) < a.num_samples
    assert len(opened) > len(a.shards)  # shards not held whole are read again
    assert [b["key"] for b in cached] == [b["key"] for b in plain]
    assert torch.equal(cached[-1]["img"], plain[-1]["img"])
