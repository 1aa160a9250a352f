"""UP-3D converter: the flat folder, python-2 fit pickles, the fit's crop camera mapped back to
the full image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from converters import up3d
from hmr.core.body import load_body_model
from hmr.core.errors import DatasetFormatError, HmrError, UnsafePickleError
from hmr.core.geometry import project_points
from hmr.core.keypoints import get_convention
from hmr.core.schema import GENDERS, SMPL_SOURCES
from tests.fixtures import up3d as fx
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.converters_3d import evil_pickle_bytes


@pytest.fixture(scope="module")
def model():
    return load_body_model(gender="neutral")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("up") / "up-3d"
    rng = np.random.default_rng(0)
    truths = [
        fx.write_sample(root, 1, model, rng),
        fx.write_sample(root, 2, model, rng, hw=(250, 320), crop=(250, 500, 0, 240, 30, 290), quality="medium",
                        dataset="mpii 1234"),
        # a camera rotation and an SMPL translation (the released fits have none): the
        # pelvis-centred rotation must be compensated
        fx.write_sample(root, 3, model, rng, rt=(0.1, -0.3, 0.05), trans=(0.2, -0.1, 0.3), dataset="lspet 9"),
        fx.write_sample(root, 4, model, rng, quality="medium", dataset="fashionpose 3"),
    ]
    fx.write_split(root, "trainval", [1, 2, 3])
    fx.write_split(root, "test", [4])
    return root, {t.image_id: t for t in truths}


@pytest.fixture(scope="module")
def converted(dataset, tmp_path_factory):
    root, _ = dataset
    _, store = convert("up3d", root, tmp_path_factory.mktemp("o") / "u.zarr", "trainval")
    return store.columns()


def _joints(model, cols):
    f32 = lambda k: torch.as_tensor(np.asarray(cols[k]), dtype=torch.float32)
    with torch.no_grad():
        out = model(f32("smpl_global_orient"), f32("smpl_body_pose"), f32("smpl_betas"), transl=f32("smpl_transl"))
    return out.joints_smpl24.numpy().astype(np.float64)


def test_the_fixture_pickle_is_what_python2_wrote(dataset):
    root, _ = dataset
    fx.check_protocol0((root / "00001_body.pkl").read_bytes())


def test_samples_and_fields(converted, dataset):
    _, truth = dataset
    cols = converted
    assert list(cols["image_path"]) == ["00001_image.png", "00002_image.png", "00003_image.png"]
    assert list(cols["source_key"]) == ["trainval.txt:1", "trainval.txt:2", "trainval.txt:3"]
    assert [tuple(hw) for hw in cols["image_hw"]] == [truth[i].hw for i in (1, 2, 3)]
    assert list(cols["extra_quality"]) == ["high", "medium", "high"]
    assert list(cols["extra_source_dataset"]) == ["lsp", "mpii", "lspet"]
    assert list(cols["extra_source_index"]) == [17, 1234, 9]
    assert list(cols["extra_fit_crop"][1]) == [250, 500, 0, 240, 30, 290]
    assert (cols["smpl_source"] == SMPL_SOURCES.index("smplify")).all()
    assert (cols["gender"] == GENDERS.index("neutral")).all()
    assert not cols["keypoints3d"][..., 3].any()  # no 3D measurement in UP-3D


def test_lsp_joints_land_in_their_anatomical_slots(converted, dataset):
    _, truth = dataset
    for row, image_id in enumerate((1, 2, 3)):
        lsp = truth[image_id].lsp
        for publisher, name in (("Left wrist", "left_wrist"), ("Right ankle", "right_ankle"),
                                ("Left shoulder", "left_shoulder"), ("Head top", "head_top")):
            index = fx.LSP_NAMES.index(publisher)
            np.testing.assert_allclose(converted["keypoints2d"][row, slot(name)], [*lsp[:2, index], 1.0], rtol=1e-6)
    labelled = get_convention("lsp").superset_indices
    assert (np.delete(converted["keypoints2d"][..., 2], labelled, axis=1) == 0).all()
    # anatomy: the body faces the camera, so the person's left wrist is on the image's right
    assert (converted["keypoints2d"][:, slot("left_hip"), 0] > converted["keypoints2d"][:, slot("right_hip"), 0]).all()


def test_smpl_reproduces_the_fit_in_camera_and_full_image(converted, dataset, model):
    _, truth = dataset
    joints = _joints(model, converted)
    for row, image_id in enumerate((1, 2, 3)):
        np.testing.assert_allclose(joints[row], truth[image_id].joints_cam, atol=1e-4)
        proj = project_points(joints[row], converted["cam_intrinsics"][row].astype(np.float64))
        np.testing.assert_allclose(proj, truth[image_id].j2d_full, atol=0.05)  # px
    # image 2's crop is not square-scaled: fx != fy, centre at the crop box's centre
    k = converted["cam_intrinsics"][1]
    assert k[0, 0] == pytest.approx(5000 * 260 / 500) and k[1, 1] == pytest.approx(5000 * 240 / 250)
    assert (k[0, 2], k[1, 2]) == pytest.approx((160.0, 120.0))


def test_naive_translation_is_wrong_when_the_camera_rotates(converted, dataset, model):
    """Image 3 has rt != 0: transl = R (J0 + trans) + t - J0, not R trans + t."""
    root, truth = dataset
    fit = up3d.read_fit(root, 3)
    naive = {k: np.asarray(v)[2:3] for k, v in converted.items() if k.startswith("smpl_")}
    naive["smpl_transl"] = (up3d._rodrigues(fit.rt) @ fit.trans + fit.t)[None]
    assert np.abs(_joints(model, naive)[0] - truth[3].joints_cam).max() > 0.01  # (R - I) J0: 2 cm here


def test_fits_holding_chumpy_objects_read_as_arrays(tmp_path, model):
    root = tmp_path / "up-3d"
    truth = fx.write_sample(root, 7, model, np.random.default_rng(9))
    fx.rewrite_fit_with_chumpy(root / "00007_body.pkl")
    fx.write_split(root, "test", [7])
    _, store = convert("up3d", root, tmp_path / "a.zarr", "test")
    np.testing.assert_allclose(_joints(model, store.columns())[0], truth.joints_cam, atol=1e-4)


def test_options_quality_and_bbox(dataset, tmp_path):
    root, truth = dataset
    _, store = convert("up3d", root, tmp_path / "a.zarr", "trainval", quality="high", bbox="keypoints")
    cols = store.columns()
    assert list(cols["image_path"]) == ["00001_image.png", "00003_image.png"]
    lsp = truth[1].lsp[:2].T
    lo, hi = lsp.min(0), lsp.max(0)
    np.testing.assert_allclose(cols["bbox_xywh"][0, 2:], (hi - lo) * 1.2, rtol=1e-5)
    _, store = convert("up3d", root, tmp_path / "b.zarr", "test")
    render = store.columns()["bbox_xywh"][0]
    assert render[2] > 0 and render[3] > 0
    with pytest.raises(HmrError, match="quality"):
        convert("up3d", root, tmp_path / "c.zarr", "test", quality="low")


def test_bad_records_and_refusals(tmp_path, model):
    root = tmp_path / "up-3d"
    rng = np.random.default_rng(5)
    for i in (1, 2, 3, 4):
        fx.write_sample(root, i, model, rng)
    (root / "00002_joints.npy").unlink()
    (root / "00003_fit_crop_info.txt").write_text("400 300 20 10 5 100\n")  # y1 < y0
    fx.write_split(root, "val", [1, 2, 3])
    with pytest.raises(HmrError, match="00002_joints.npy"):
        convert("up3d", root, tmp_path / "a.zarr", "val")
    res, store = convert("up3d", root, tmp_path / "b.zarr", "val", skip_bad=True)
    assert store.columns()["image_path"].tolist() == ["00001_image.png"]
    bad = {b.record: (b.path, b.message) for b in res.skipped}
    assert bad["val.txt:2"][0].endswith("00002_joints.npy")
    assert "00003_fit_crop_info.txt" in bad["val.txt:3"][1]
    (root / "00004_body.pkl").write_bytes(evil_pickle_bytes())
    fx.write_split(root, "train", [4])
    with pytest.raises(UnsafePickleError, match="os.system|posix.system|system"):
        convert("up3d", root, tmp_path / "c.zarr", "train")
    (root / "test.txt").write_text("/00001_image.png\nnot-a-name\n")
    with pytest.raises(DatasetFormatError, match="line 2"):
        convert("up3d", root, tmp_path / "d.zarr", "test")
    with pytest.raises(DatasetFormatError, match="pass --root"):
        convert("up3d", tmp_path, tmp_path / "e.zarr", "val")
