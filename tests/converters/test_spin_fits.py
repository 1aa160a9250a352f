"""SPIN static fits attached to SPIN-order samples (from SPIN's npz or from a store)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from hmr.core.schema.fields import SMPL_SOURCES
from tests.fixtures.converters_2d import (
    convert, leftovers, slot, write_lsp, write_spin_fits, write_spin_npz,
)

FIT = SMPL_SOURCES.index("spin-fit")


@pytest.fixture
def spin(tmp_path):
    root = tmp_path / "spin_data"
    images = tmp_path / "coco"
    arrays = write_spin_npz(root, "coco_2014_train.npz", images, n=5)
    fits = write_spin_fits(root, "coco_fits.npy", n=5)
    return root, images, arrays, fits


def test_fit_rows_become_smpl_in_npz_order(spin, tmp_path):
    root, images, arrays, fits = spin
    _, store = convert("spin-fits", root, tmp_path / "out", "coco", images=images)
    assert len(store) == 5
    np.testing.assert_array_equal(store.read("smpl_source"), FIT)
    np.testing.assert_allclose(store.read("smpl_global_orient"), fits[:, :3], rtol=1e-6)
    np.testing.assert_allclose(store.read("smpl_body_pose"), fits[:, 3:72], rtol=1e-6)
    np.testing.assert_allclose(store.read("smpl_betas"), fits[:, 72:], rtol=1e-6)
    kps = store.read("keypoints2d")
    np.testing.assert_allclose(kps[:, slot("right_ankle")], arrays["part"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(kps[:, slot("nose_openpose")], arrays["openpose"][:, 0], rtol=1e-6)
    side = arrays["scale"] * 200
    np.testing.assert_allclose(store.read("bbox_xywh")[:, 2], side, rtol=1e-5)
    np.testing.assert_allclose(store.read("bbox_xywh")[:, 0], arrays["center"][:, 0] - side / 2, rtol=1e-5)
    # image paths are relative to ROOT and resolve to the dataset's images
    first = root / store.read("image_path")[0]
    assert os.path.samefile(first, images / "images/im0001.jpg")
    np.testing.assert_array_equal(store.read("image_hw")[:, 1], 50 + np.arange(5))


def test_ground_truth_smpl_is_kept_unless_overridden(tmp_path):
    root, images = tmp_path / "spin_data", tmp_path / "h36m"
    arrays = write_spin_npz(root, "h36m_single_train_openpose.npz", images, n=4, with_gt=True)
    fits = write_spin_fits(root, "h36m_fits.npy", n=4)
    _, store = convert("spin-fits", root, tmp_path / "out", "h36m", images=images)
    assert store.read("smpl_source")[0] == SMPL_SOURCES.index("mosh")
    np.testing.assert_allclose(store.read("smpl_body_pose")[0], arrays["pose"][0, 3:], rtol=1e-6)
    np.testing.assert_array_equal(store.read("smpl_source")[1:], FIT)
    _, over = convert("spin-fits", root, tmp_path / "out2", "h36m", images=images, override=1)
    np.testing.assert_allclose(over.read("smpl_body_pose")[0], fits[0, 3:72], rtol=1e-6)


def test_attach_to_a_store_in_spin_order(tmp_path):
    write_lsp(tmp_path / "lsp", n=6)
    _, lsp = convert("lsp", tmp_path / "lsp", tmp_path / "stores", "train")
    root = tmp_path / "spin_data"
    fits = write_spin_fits(root, "lsp_fits.npy", n=3)  # MMHuman3D's name for lsp-orig
    _, store = convert("spin-fits", root, tmp_path / "out", "lsp-orig", store=lsp.path)
    np.testing.assert_array_equal(store.read("keypoints2d"), lsp.read("keypoints2d"))
    np.testing.assert_array_equal(store.read("extra_occluded"), lsp.read("extra_occluded"))
    np.testing.assert_allclose(store.read("smpl_betas"), fits[:, 72:], rtol=1e-6)
    for rel_new, rel_old in zip(store.read("image_path"), lsp.read("image_path")):
        assert os.path.samefile(root / rel_new, tmp_path / "lsp" / rel_old)


def test_row_count_mismatch_writes_nothing(spin, tmp_path):
    root, images, _, _ = spin
    write_spin_fits(root, "coco_fits.npy", n=4)
    with pytest.raises(DatasetFormatError, match="not aligned") as err:
        convert("spin-fits", root, tmp_path / "out", "coco", images=images)
    assert err.value.path.endswith("coco_fits.npy")
    assert leftovers(tmp_path / "out") == []


def test_nan_fit_row(spin, tmp_path):
    root, images, _, _ = spin
    write_spin_fits(root, "coco_fits.npy", n=5, nan_row=3)
    with pytest.raises(DatasetFormatError, match="NaN") as err:
        convert("spin-fits", root, tmp_path / "out", "coco", images=images)
    assert (err.value.path, err.value.record) == (str(root / "static_fits" / "coco_fits.npy"), 3)
    result, store = convert("spin-fits", root, tmp_path / "out", "coco", images=images, skip_bad=True)
    assert len(store) == 4
    assert json.loads(result.skipped_report.read_text())[0]["record"] == 3


def test_npz_pickle_importing_anything_is_refused(spin, tmp_path):
    import datetime

    from hmr.core.errors import UnsafePickleError

    root, images, arrays, _ = spin
    hostile = np.empty(len(arrays["imgname"]), dtype=object)
    hostile[:] = [datetime.date(2020, 1, 1)] * len(hostile)  # unpickling imports datetime.date
    np.savez(root / "dataset_extras" / "coco_2014_train.npz", **dict(arrays, imgname=hostile))
    with pytest.raises(UnsafePickleError):
        convert("spin-fits", root, tmp_path / "out", "coco", images=images)
    assert leftovers(tmp_path / "out") == []


def test_bad_fit_shape(spin, tmp_path):
    root, images, _, _ = spin
    np.save(root / "static_fits" / "coco_fits.npy", np.zeros((5, 72)))
    with pytest.raises(DatasetFormatError, match=r"\(N, 82\)"):
        convert("spin-fits", root, tmp_path / "out", "coco", images=images)
