"""SPIN training: SMPLify in the loop updates the fits tables, stores fits in the un-augmented
frame, survives resume exactly and merges every DDP rank's improvements."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hmr.fitting.fits_table import FitsTable, fits_dir
from hmr.training.logs import read_metrics
from tests.fixtures.spin import mean_pose_table, spin_overrides, spin_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return spin_shards(tmp_path_factory.mktemp("spin"))


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    from tests.fixtures.fitting import small_prior

    return small_prior(tmp_path_factory.mktemp("prior"))


def _table(set_dir):
    return FitsTable.open(fits_dir(set_dir))


def _epoch_rows(run):
    return [r for r in read_metrics(run) if "spin/epoch_fits" in r]


def test_spin_run_improves_fits_and_reports_them_per_epoch(tmp_path, shards, prior):
    from hmr.training.launch import train

    mean_pose_table(shards)
    last = train("tiny_cpu", spin_overrides(shards, prior), out=tmp_path / "run", progress=False)
    epochs = _epoch_rows(tmp_path / "run")
    assert [r["step"] for r in epochs] == [4, 8]  # 16 samples / batch 4 = 4 steps an epoch
    assert all(r["spin/epoch_fits"] == 16 for r in epochs)
    assert epochs[0]["spin/epoch_improved"] > 0  # every fit beats the mean pose it starts from...
    table = _table(shards)
    improved = np.isfinite(table.error)
    assert improved.sum() >= epochs[0]["spin/epoch_improved"]  # ...and the merged table kept them
    assert not np.allclose(table.pose[improved], _mean_rows(table)[improved])
    assert 0 <= last["spin/valid_fraction"] <= 1 and last["spin/fit_loss"] > 0
    assert sorted(p.name for p in (tmp_path / "run" / "fits").iterdir()) == ["step_00000004", "step_00000008"]
    assert not list((fits_dir(shards) / "updates").glob("*.npz"))  # everything merged
    recorded = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["input_config"]
    assert recorded["crop_scale"] == 1.2  # the shards' framing


def test_shard_sets_with_different_crop_scales_are_refused(tmp_path, shards):
    import json

    from hmr.core.errors import ConfigError
    from hmr.training.config import load_config
    from hmr.training.data import training_crop_scale

    other = tmp_path / "other"
    shutil.copytree(shards, other, ignore=shutil.ignore_patterns("fits"))
    index = json.loads((other / "index.json").read_text())
    index["bbox_scale"] = 1.0
    (other / "index.json").write_text(json.dumps(index))
    config = load_config("tiny_cpu", ['data.source="shards"', f'data.shards=["{shards}"]'])
    assert training_crop_scale(config) == 1.2
    both = load_config("tiny_cpu", ['data.source="shards"', f'data.shards=["{shards}", "{other}"]'])
    with pytest.raises(ConfigError, match="bbox_scale"):
        training_crop_scale(both)
    assert training_crop_scale(load_config("tiny_cpu", ['data.source="random"'])) is None


def _mean_rows(table):
    from hmr.fitting.smplify import mean_smpl_params

    mean = mean_smpl_params(1)
    return np.tile(np.c_[mean.global_orient, mean.body_pose], (len(table), 1))


def test_resume_restores_the_fits_table_and_repeats_the_run(tmp_path, shards, prior):
    from hmr.training.launch import train

    overrides = spin_overrides(shards, prior)
    mean_pose_table(shards)
    train("tiny_cpu", overrides, out=tmp_path / "full", progress=False)
    full_table = _table(shards)
    mean_pose_table(shards)
    train("tiny_cpu", overrides, out=tmp_path / "cut", max_steps=4, progress=False)
    # What a killed run did after its checkpoint: merged fits the checkpoint never saw.
    table = _table(shards)
    table.update(list(table.keys[:5]), table.pose[:5] + 0.3, table.betas[:5], np.zeros(5, np.float32))
    table.flush()
    train("tiny_cpu", overrides, out=tmp_path / "cut", resume=True, progress=False)
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for key in ("loss", "spin/fit_loss", "spin/improved_fraction", "spin/epoch_improved"):
        np.testing.assert_allclose([r[key] for r in b if key in r], [r[key] for r in a if key in r], rtol=1e-5)
    resumed = _table(shards)
    np.testing.assert_array_equal(resumed.error, full_table.error)
    np.testing.assert_allclose(resumed.pose, full_table.pose, atol=1e-6)


def _batches(set_dir, n, draw):
    """Two collated batches of the first ``n`` samples: stored crop, and augmented by ``draw``."""
    from hmr.core.keypoints import flip_permutation
    from loaders.augment import geometric_affine, transform_sample
    from loaders.batch import collate, decode_sample, identity_resize, training_arrays
    from loaders.shard import load_shard_set
    from loaders.stream import iter_shard

    sset = load_shard_set(set_dir)
    perm = np.asarray(flip_permutation(sset.keypoint_convention))
    raw = [r for url in sset.urls for r in iter_shard(url)][:n]
    plain, moved = [], []
    for r in raw:
        s = decode_sample(r, sset.num_keypoints)
        for out, t in ((plain, identity_resize(s, 64, perm)),
                       (moved, transform_sample(s, geometric_affine(s, draw, 64), 64, draw.flip, perm))):
            arrays = training_arrays(t, 64, sset.keypoint_convention, "spin_49")
            out.append({**arrays, "gains": np.ones(3)})
    return collate(plain), collate(moved)


def _prediction(batch, noise):
    """A network-output stand-in: the batch's SMPL with ``noise`` (canonical frame) on the body."""
    from hmr.fitting.spin import to_batch_frame, to_canonical_frame
    from hmr.core.geometry import axis_angle_to_matrix

    pose = torch.cat([batch["smpl_global_orient"], batch["smpl_body_pose"]], 1)
    canonical = to_canonical_frame(pose, batch["aug_rotation"], batch["aug_flip"])
    pose = to_batch_frame(canonical + noise, batch["aug_rotation"], batch["aug_flip"])
    rot = axis_angle_to_matrix(pose.reshape(-1, 3)).reshape(-1, 24, 3, 3)
    return SimpleNamespace(pose_rotmat=rot, betas=batch["smpl_betas"].clone(),
                           cam_t=torch.tensor([[0.0, 0.0, 40.0]]).repeat(len(pose), 1))


def test_fits_are_stored_in_the_unaugmented_frame(shards, prior):
    from hmr.core.body import load_body_model
    from hmr.fitting.prior import load_pose_prior
    from hmr.fitting.spin import to_canonical_frame
    from hmr.training.config import load_config
    from hmr.training.spin import SpinSupervision
    from loaders.augment import GeometricDraw

    config = load_config("tiny_cpu", spin_overrides(shards, prior, iters=10))
    body, pose_prior = load_body_model(), load_pose_prior(prior)
    plain, moved = _batches(shards, 4, GeometricDraw(True, 30.0, 1.0, (0.0, 0.0), 1.0, 0.0))
    assert moved["aug_flip"].all() and not plain["aug_flip"].any()
    noise = 0.1 * torch.randn(4, 72, generator=torch.Generator().manual_seed(0))
    noise[:, :3] = 0
    stored = {}
    for name, batch in (("plain", plain), ("moved", moved)):
        mean_pose_table(shards)
        spin = SpinSupervision(config, body, pose_prior=pose_prior)
        supervised, stats = spin.supervise(batch, _prediction(batch, noise))
        assert float(stats["spin/improved_fraction"]) == 1.0
        stored[name] = torch.from_numpy(spin.table.lookup(batch["key"])[0])
        # The supervision is in the batch frame: the stored fit moved back into it (GT rows keep GT).
        assert torch.equal(supervised["smpl_body_pose"], batch["smpl_body_pose"])
    truth = torch.cat([plain["smpl_global_orient"], plain["smpl_body_pose"]], 1)
    seen = torch.cat([moved["smpl_global_orient"], moved["smpl_body_pose"]], 1)
    assert _root_angle(seen, truth).min() > 0.45  # the augmented frame is far from the stored one...
    assert _root_angle(stored["moved"], stored["plain"]).max() < 0.1  # ...the stored fits are not
    assert (stored["moved"][:, 3:] - stored["plain"][:, 3:]).abs().mean() < 0.03
    assert _root_angle(stored["moved"], truth).max() < 0.3
    torch.testing.assert_close(to_canonical_frame(seen, moved["aug_rotation"], moved["aug_flip"]), truth,
                               atol=1e-4, rtol=0)


def _root_angle(a, b):
    """Angle (rad) between the root rotations of poses a, b (B, 72)."""
    from hmr.core.geometry import axis_angle_to_matrix

    rel = axis_angle_to_matrix(a[:, :3]).transpose(1, 2) @ axis_angle_to_matrix(b[:, :3])
    return torch.arccos(((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))


def test_gt_free_samples_are_supervised_by_valid_fits_only(shards, prior):
    from hmr.core.body import load_body_model
    from hmr.fitting.prior import load_pose_prior
    from hmr.training.config import load_config
    from hmr.training.spin import SpinSupervision
    from loaders.augment import GeometricDraw

    plain, _ = _batches(shards, 4, GeometricDraw(False, 0.0, 1.0, (0.0, 0.0), 1.0, 0.0))
    plain["has_smpl"][:] = torch.tensor([True, False, False, False])
    config = load_config("tiny_cpu", [*spin_overrides(shards, prior, iters=10), "spin.threshold=1e9"])
    mean_pose_table(shards)
    spin = SpinSupervision(config, load_body_model(), pose_prior=load_pose_prior(prior))
    pred = _prediction(plain, torch.zeros(4, 72))
    out, _ = spin.supervise(plain, pred)
    assert out["has_smpl"].all()  # threshold 1e9: every fit is valid
    assert torch.equal(out["smpl_body_pose"][0], plain["smpl_body_pose"][0])  # GT kept
    stored = torch.from_numpy(spin.table.lookup(plain["key"])[0])
    torch.testing.assert_close(out["smpl_body_pose"][1:], stored[1:, 3:])  # the fit, not the GT
    config = load_config("tiny_cpu", [*spin_overrides(shards, prior, iters=10), "spin.threshold=1e-9"])
    mean_pose_table(shards)
    spin = SpinSupervision(config, load_body_model(), pose_prior=load_pose_prior(prior))
    out, _ = spin.supervise(plain, pred)
    assert out["has_smpl"].tolist() == [True, False, False, False]  # no fit is good enough


def _ddp_worker(rank, world, port, set_dir, prior, out, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    import torch.distributed as dist

    from hmr.training.config import load_config
    from hmr.training.data import build_batches
    from hmr.training.trainer import Trainer

    flush = FitsTable.flush
    rounds = iter(range(1, 1000))

    def keep_a_copy(self):  # record what this rank accepted, by merge round, before the merge deletes it
        n = next(rounds)  # every rank flushes once per sync, whether it has something or not
        path = flush(self)
        if path is not None:
            shutil.copyfile(path, Path(result_dir) / f"round{n:03d}-{path.name}")
        return path

    FitsTable.flush = keep_a_copy
    cfg = load_config("tiny_cpu", spin_overrides(Path(set_dir), Path(prior), steps=4))
    trainer = Trainer(cfg, out)
    trainer.fit(build_batches(cfg, rank=rank, world_size=world), progress=False)
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_merges_every_ranks_improvements(tmp_path, shards, prior):
    import socket

    import torch.multiprocessing as mp

    mean_pose_table(shards)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "updates").mkdir()
    mp.spawn(_ddp_worker, args=(2, port, str(shards), str(prior), str(tmp_path / "run"), str(tmp_path / "updates")),
             nprocs=2, join=True)
    # Merge rule: within a round (one sync) the lowest loss among the ranks that accepted a fit
    # for a key wins; a later round supersedes earlier ones. Loss and pose travel together.
    files = sorted((tmp_path / "updates").glob("round*.npz"))
    assert {f.name.split("-")[1][:7] for f in files} == {"rank000", "rank001"}
    last: dict[str, tuple[int, float, np.ndarray]] = {}
    for f in files:
        n = int(f.name[5:8])
        with np.load(f) as d:
            for key, err, pose in zip(d["keys"], d["error"], d["pose"]):
                held = last.get(str(key))
                if held is None or held[0] < n or float(err) < held[1]:
                    last[str(key)] = (n, float(err), pose)
    table = _table(shards)
    merged = {k: (float(e), p) for k, e, p in zip(table.keys, table.error, table.pose)}
    assert last and all(merged[k][0] == e for k, (_, e, _) in last.items())  # no rank's accepted fit lost
    assert all(np.array_equal(merged[k][1], p) for k, (_, _, p) in last.items())
    assert all(np.isinf(merged[k][0]) for k in merged if k not in last)
    epochs = _epoch_rows(tmp_path / "run")
    assert [r["step"] for r in epochs] == [2, 4]  # 16 samples / (2 ranks x 4) = 2 steps an epoch
    assert all(r["spin/epoch_fits"] == 16 for r in epochs) and epochs[0]["spin/epoch_improved"] > 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["spin"]["counts"] == [0, 0]


def test_missing_tables_start_from_the_store_or_spin_static_fits(tmp_path, shards, prior):
    from hmr.core.body import load_body_model
    from hmr.fitting.prior import load_pose_prior
    from hmr.core.schema import open_store
    from hmr.training.config import load_config
    from hmr.training.spin import SpinSupervision
    from loaders.shard import load_shard_set

    sset = load_shard_set(shards)
    store = open_store(sset.index["store"])
    cols = next(iter(store.blocks(fields=["smpl_global_orient", "smpl_body_pose", "smpl_betas"])))[1]
    body, pose_prior = load_body_model(), load_pose_prior(prior)
    shutil.rmtree(fits_dir(shards), ignore_errors=True)
    spin = SpinSupervision(load_config("tiny_cpu", spin_overrides(shards, prior)), body, pose_prior=pose_prior)
    table = spin.table.tables[sset.name]
    np.testing.assert_array_equal(table.pose[: len(cols["smpl_betas"])],
                                  np.c_[cols["smpl_global_orient"], cols["smpl_body_pose"]])
    static = np.random.default_rng(0).normal(0, 0.1, (len(store), 82)).astype(np.float32)
    np.save(tmp_path / "synth_fits.npy", static)
    shutil.rmtree(fits_dir(shards))
    config = load_config("tiny_cpu", [*spin_overrides(shards, prior),
                                      f'spin.static_fits={{{sset.name} = "{tmp_path / "synth_fits.npy"}"}}'])
    spin = SpinSupervision(config, body, pose_prior=pose_prior)
    np.testing.assert_array_equal(spin.table.tables[sset.name].pose, static[:, :72])
    np.testing.assert_array_equal(spin.table.tables[sset.name].betas, static[:, 72:])
    bad = load_config("tiny_cpu", [*spin_overrides(shards, prior), 'spin.static_fits={nope = "x.npy"}'])
    from hmr.core.errors import ConfigError

    with pytest.raises(ConfigError, match="nope"):
        SpinSupervision(bad, body, pose_prior=pose_prior)


def test_each_run_has_its_own_table_unless_one_is_named(tmp_path, shards, prior):
    from hmr.fitting.fits_table import run_table_name
    from hmr.training.launch import train

    from hmr.fitting.smplify import mean_smpl_params
    from loaders.shard import load_shard_set

    mean_pose_table(shards)
    shared = _table(shards)
    mean = mean_smpl_params(len(shared))
    np.save(tmp_path / "static_fits.npy", np.c_[mean.global_orient, mean.body_pose, mean.betas].astype(np.float32))
    overrides = [o for o in spin_overrides(shards, prior, steps=4) if not o.startswith("spin.table")]
    overrides.append(f'spin.static_fits={{{load_shard_set(shards).name} = "{tmp_path / "static_fits.npy"}"}}')
    for run in ("a", "b"):
        train("tiny_cpu", overrides, out=tmp_path / run, progress=False)
    own = {run: FitsTable.open(fits_dir(shards, run_table_name(tmp_path / run))) for run in ("a", "b")}
    # Each run started from the static fits and merged only its own improvements: a shared
    # table would show run a's merges in run b's history.
    assert all(t.meta["source"].startswith("spin static fits") for t in own.values())
    assert [len(t.meta["history"]) for t in own.values()] == [1, 1]  # the epoch's merge (step 4)
    assert all(np.isfinite(t.error).sum() == t.meta["history"][0]["improved"] > 0 for t in own.values())
    # ...and the shared table nobody named was left as it was.
    after = _table(shards)
    assert after.meta["history"] == shared.meta["history"] and np.array_equal(after.pose, shared.pose)
    with pytest.raises(Exception, match="table name"):
        train("tiny_cpu", [*overrides, 'spin.table="../x"'], out=tmp_path / "c", progress=False)


def test_spin_needs_shards():
    from hmr.core.errors import ConfigError
    from hmr.training.config import load_config

    with pytest.raises(ConfigError, match="spin.enabled needs data.source"):
        load_config("tiny_cpu", ["spin.enabled=true"])


def test_augmentation_settings_reach_the_loader(shards):
    from hmr.core.errors import ConfigError
    from hmr.training.config import load_config
    from hmr.training.data import build_batches

    base = ['data.source="shards"', f'data.shards=["{shards}"]', "data.num_workers=0", "train.batch_size=8",
            "data.augment=true"]
    flips = []
    for setting in ("{flip_prob = 1.0, rotation_prob = 0.0}", "{flip_prob = 0.0, rotation_prob = 0.0}"):
        batch = next(build_batches(load_config("tiny_cpu", [*base, f"data.augmentation={setting}"]))(0))
        flips.append(batch["aug_flip"].bool().tolist())
        assert torch.allclose(batch["aug_rotation"], torch.eye(3).expand(8, 3, 3))  # rotation_prob = 0
    assert flips[0] == [True] * 8 and flips[1] == [False] * 8
    with pytest.raises(ConfigError, match="data.augmentation"):
        build_batches(load_config("tiny_cpu", [*base, "data.augmentation={flip = 1.0}"]))
