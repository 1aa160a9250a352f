import multiprocessing as mp

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError, HmrError
from hmr.fitting.fits_table import FitsTable, fits_dir, merge_updates, store_keys
from tests.fixtures.fitting import write_rank_updates

KEYS = [f"set-train_{i:09d}" for i in range(6)]


def _table(root, error=None):
    pose = np.zeros((6, 72), np.float32)
    return FitsTable.create(root, KEYS, pose, np.zeros((6, 10)), error=error, source="test")


def test_update_keeps_only_lower_losses_and_counts(tmp_path):
    table = _table(tmp_path, error=np.full(6, 10.0))
    keys = KEYS[:3]
    better = table.update(keys, np.ones((3, 72)), np.ones((3, 10)), new_error=[5.0, 20.0, 10.0])
    assert better.tolist() == [True, False, False]
    pose, betas, err = table.lookup(KEYS[:2])
    assert pose[0].tolist() == [1.0] * 72 and pose[1].tolist() == [0.0] * 72 and err.tolist() == [5.0, 10.0]
    # SPIN compares with the stored fit's loss re-measured on the batch when given.
    assert table.update(KEYS[1:2], np.ones((1, 72)), np.ones((1, 10)), [9.0], old_error=[8.0]).tolist() == [False]
    assert table.update(KEYS[2:3], np.full((1, 72), np.nan), np.ones((1, 10)), [1.0]).tolist() == [False]
    assert table.reset_counts() == (5, 1) and table.reset_counts() == (0, 0)
    with pytest.raises(HmrError, match="not in the fits table"):
        table.lookup(["other_000000001"])


def test_flush_then_open_resumes_with_unmerged_updates(tmp_path):
    table = _table(tmp_path)
    table.update(KEYS[:2], np.full((2, 72), 0.5), np.zeros((2, 10)), [3.0, 4.0])
    with pytest.raises(HmrError, match="flush"):
        table.reload()
    path = table.flush()
    assert path.parent.name == "updates" and table.flush() is None
    resumed = FitsTable.open(tmp_path)
    assert resumed.lookup(KEYS[:3])[2].tolist() == [3.0, 4.0, np.inf]
    report = merge_updates(tmp_path)
    assert (report.files, report.proposed, report.improved) == (1, 2, 2)
    assert not list((tmp_path / "updates").glob("*.npz"))
    reopened = FitsTable.open(tmp_path)
    assert reopened.lookup(KEYS[:2])[0][:, 0].tolist() == [0.5, 0.5]
    assert reopened.meta["history"][-1]["improved"] == 2
    assert merge_updates(tmp_path).files == 0


def test_two_processes_writing_and_merging_concurrently(tmp_path):
    _table(tmp_path)
    ctx = mp.get_context("spawn")
    # Both ranks propose fits for KEYS[2:4] (overlap); the lowest loss must win.
    jobs = [(str(tmp_path), 0, KEYS[:4], [10.0, 11.0, 12.0, 13.0], 4),
            (str(tmp_path), 1, KEYS[2:], [5.0, 30.0, 7.0, 8.0], 4)]
    procs = [ctx.Process(target=write_rank_updates, args=job) for job in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    merge_updates(tmp_path)
    table = FitsTable.open(tmp_path)
    expected = [10, 11, 5, 13, 7, 8]
    expected = [e - 3 for e in expected]  # the fourth round of each rank is its best
    pose, _, err = table.lookup(KEYS)
    assert err.tolist() == expected
    assert pose[:, 0].tolist() == expected  # the pose travelled with its loss
    assert not list((tmp_path / "updates").glob("*.npz"))
    assert [h["files"] for h in table.meta["history"]] == [8]  # 4 flushes per rank, one merge


def test_create_refuses_to_overwrite_and_checks_shapes(tmp_path):
    _table(tmp_path)
    with pytest.raises(FileExistsError):
        _table(tmp_path)
    with pytest.raises(HmrError, match="72"):
        FitsTable.create(tmp_path / "b", KEYS, np.zeros((6, 69)), np.zeros((6, 10)))
    with pytest.raises(HmrError, match="unique"):
        FitsTable.create(tmp_path / "c", KEYS[:2] * 2, np.zeros((4, 72)), np.zeros((4, 10)))


def test_from_spin_static_fits(tmp_path):
    fits = np.random.default_rng(0).normal(size=(6, 82)).astype(np.float32)
    np.save(tmp_path / "coco_fits.npy", fits)
    table = FitsTable.from_spin_fits(tmp_path / "fits", tmp_path / "coco_fits.npy", KEYS)
    pose, betas, err = table.lookup(KEYS[3:4])
    np.testing.assert_array_equal(pose[0], fits[3, :72])
    np.testing.assert_array_equal(betas[0], fits[3, 72:])
    assert np.isinf(err).all()
    with pytest.raises(DatasetFormatError, match="row-aligned"):
        FitsTable.from_spin_fits(tmp_path / "f2", tmp_path / "coco_fits.npy", KEYS[:5])
    fits[4, 10] = np.nan
    np.save(tmp_path / "bad_fits.npy", fits)
    with pytest.raises(DatasetFormatError) as info:
        FitsTable.from_spin_fits(tmp_path / "f3", tmp_path / "bad_fits.npy", KEYS)
    assert info.value.record == 4


def test_from_store_uses_loader_keys_and_the_store_smpl(tmp_path, store_path):
    from hmr.core.schema import open_store
    from hmr.core.schema.sample_keys import set_name

    store = open_store(store_path)
    root = fits_dir(tmp_path / "shards" / set_name(store.dataset, store.split))
    table = FitsTable.from_store(root, store_path)
    keys = store_keys(store)
    assert keys[1] == f"{set_name(store.dataset, store.split)}_000000001" and len(table) == len(store)
    pose, betas, _ = table.lookup(keys)
    np.testing.assert_allclose(pose[:, 3:], store.read("smpl_body_pose"))
    np.testing.assert_allclose(betas, store.read("smpl_betas"))
    assert (root / "table.npz").is_file() and root.parent.name == "fits" and root.name == "shared"
    with pytest.raises(HmrError, match="table name"):
        fits_dir(tmp_path, "../elsewhere")


def test_a_damaged_update_file_is_named(tmp_path):
    _table(tmp_path)
    (tmp_path / "updates").mkdir()
    np.savez(tmp_path / "updates" / "rank000-1-000001.npz", keys=np.array(KEYS[:1]), pose=np.zeros((1, 72)),
             betas=np.zeros((1, 10)))
    with pytest.raises(HmrError, match="error") as info:
        merge_updates(tmp_path)
    assert "rank000-1-000001.npz" in str(info.value)
    (tmp_path / "updates" / "rank000-1-000001.npz").unlink()  # the table itself was left untouched
    assert FitsTable.open(tmp_path).lookup(KEYS[:1])[2].tolist() == [np.inf]


def _write_update(root, name, keys, error, fill):
    (root / "updates").mkdir(exist_ok=True)
    n = len(keys)
    np.savez(root / "updates" / name, keys=np.array(keys), pose=np.full((n, 72), fill, np.float32),
             betas=np.zeros((n, 10), np.float32), error=np.array(error, np.float32))


def test_merge_keeps_what_ranks_accepted_latest_first_then_lowest_loss(tmp_path):
    _table(tmp_path, error=np.full(6, 10.0))
    # A fit accepted against the stored fit re-measured on the batch (SPIN) may record a loss
    # above the stored one's recorded loss: the merge must still keep it, as the rank did.
    table = FitsTable.open(tmp_path, rank=0)
    assert table.update(KEYS[:1], np.full((1, 72), 7.0), np.zeros((1, 10)), [12.0], old_error=[15.0]).tolist() == [True]
    table.flush()
    # Rank 1: two rounds on KEYS[1]; its later decision supersedes its earlier fit.
    _write_update(tmp_path, "rank001-100-000001.npz", KEYS[1:3], [3.0, 9.0], 1.0)
    _write_update(tmp_path, "rank001-200-000002.npz", KEYS[1:2], [4.0], 2.0)
    # Rank 2 also accepted a fit for KEYS[2] in this round: across ranks the lower loss wins.
    _write_update(tmp_path, "rank002-150-000001.npz", KEYS[2:4], [8.0, 11.0], 3.0)
    import shutil

    shutil.copytree(tmp_path / "updates", tmp_path / "copy")
    resumed = FitsTable.open(tmp_path)  # resume applies unmerged files by the same rule
    report = merge_updates(tmp_path)
    merged = FitsTable.open(tmp_path)
    for t in (resumed, merged):
        pose, _, err = t.lookup(KEYS)
        assert err.tolist() == [12.0, 4.0, 8.0, 11.0, 10.0, 10.0]
        assert pose[:, 0].tolist() == [7.0, 2.0, 3.0, 3.0, 0.0, 0.0]
    assert (report.files, report.proposed, report.improved) == (4, 6, 4)
    # A merge repeated over the same files (a crash before they were deleted) changes nothing.
    shutil.rmtree(tmp_path / "updates")
    shutil.copytree(tmp_path / "copy", tmp_path / "updates")
    assert merge_updates(tmp_path).improved == 0
    assert FitsTable.open(tmp_path).lookup(KEYS)[2].tolist() == [12.0, 4.0, 8.0, 11.0, 10.0, 10.0]
