"""MuPoTS-3D: annot.mat / occlusion.mat cell arrays, validity honoured, joints by the
publisher's names, millimetres -> metres, per-sequence image sizes and fitted intrinsics."""

from __future__ import annotations

import numpy as np
import pytest

from converters import mupots3d
from converters.driver import run_conversion
from converters.options import ConvertOptions
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.geometry import project_points
from hmr.core.schema import open_store
from hmr.core.sources import SOURCES
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.converters_3d import truncate
from tests.fixtures.mupots3d import CAMERAS, write_mupots_sequence

# The publisher's 17 joints by index (mpii_get_joints('relevant') of the 3DHP code, 3DMPPE's
# names in brackets) and the superset joint each must land in.
PUBLISHER = {0: ("head_top [Head_top]", "head_h36m"), 1: ("neck [Thorax]", "neck"),
             2: ("right_shoulder", "right_shoulder"), 3: ("right_elbow", "right_elbow"),
             4: ("right_wrist", "right_wrist"), 5: ("left_shoulder", "left_shoulder"),
             6: ("left_elbow", "left_elbow"), 7: ("left_wrist", "left_wrist"),
             8: ("right_hip", "right_hip"), 9: ("right_knee", "right_knee"),
             10: ("right_ankle", "right_ankle"), 11: ("left_hip", "left_hip"),
             12: ("left_knee", "left_knee"), 13: ("left_ankle", "left_ankle"),
             14: ("pelvis (the evaluation's root)", "pelvis"), 15: ("spine [Spine]", "spine_h36m"),
             16: ("head [Head]", "jaw_h36m")}


@pytest.fixture
def raw(tmp_path):
    root = tmp_path / "mupots"
    rng = np.random.default_rng(3)
    ts1 = write_mupots_sequence(root, "TS1", np.array([[1, 1], [1, 0], [0, 1]]), rng)
    ts6 = write_mupots_sequence(root, "TS6", np.array([[1, 1, 0], [1, 1, 1]]), rng)
    return root, {"TS1": ts1, "TS6": ts6}


def test_row_is_a_test_set(tmp_path):
    assert SOURCES["mupots3d"].splits == ("test",)
    assert SOURCES["mupots3d"].converter == "converters.mupots3d"
    with pytest.raises(HmrError, match="not 'train'"):
        convert("mupots3d", tmp_path, tmp_path / "out", "train")


def test_valid_persons_joints_by_name_metres_and_occlusion(raw, tmp_path):
    root, written = raw
    _, store = convert("mupots3d", root, tmp_path / "out", "test", sequences="TS1,TS6")
    expected = [(s, f, p) for s in ("TS1", "TS6") for f, p in zip(*np.nonzero(written[s]["valid"]))]
    assert list(store.read("source_key")) == [f"{s}/annot.mat:frame {f}:person {p}" for s, f, p in expected]
    assert list(store.read("image_path")) == [f"MultiPersonTestSet/{s}/img_{f:06d}.jpg" for s, f, _ in expected]
    kp2d, kp3d = store.read("keypoints2d"), store.read("keypoints3d")
    occ, univ = store.read("extra_occluded"), store.read("extra_univ_keypoints3d")
    for row, (s, f, p) in enumerate(expected):
        j2d, j3d = written[s]["j2d"][f, p], written[s]["j3d"][f, p]
        for j, (name, superset) in PUBLISHER.items():
            np.testing.assert_allclose(kp2d[row, slot(superset)], [*j2d[j], 1.0], rtol=1e-5, err_msg=name)
            np.testing.assert_allclose(kp3d[row, slot(superset)], [*j3d[j], 1.0], atol=1e-6, err_msg=name)
        assert kp2d[row, :, 2].sum() == 17 and kp3d[row, :, 3].sum() == 17
        np.testing.assert_array_equal(occ[row], written[s]["occluded"][f, p])
        np.testing.assert_allclose(univ[row], j3d * 0.93, atol=1e-6)
    assert (store.read("person_id") == [p for *_, p in expected]).all()
    assert (store.read("extra_valid_frame") == 1).all()


def test_image_sizes_per_sequence_and_projection_within_a_pixel(raw, tmp_path):
    root, _ = raw
    for check_images in (True, False):
        result = run_conversion("mupots3d", root, tmp_path / f"o{check_images}", split="test",
                                options=ConvertOptions(workers=1, check_images=check_images,
                                                       extra={"sequences": "TS1,TS6"}), progress=False)
        store = open_store(result.store)
        seqs, hw = store.read("sequence"), store.read("image_hw")
        assert (hw[seqs == "TS1"] == [2048, 2048]).all() and (hw[seqs == "TS6"] == [1080, 1920]).all()
    k, kp2d, kp3d = store.read("cam_intrinsics"), store.read("keypoints2d"), store.read("keypoints3d")
    for name in ("TS1", "TS6"):
        fx, fy, cx, cy, *_ = CAMERAS[name]
        np.testing.assert_allclose(k[seqs == name][0], [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rtol=1e-4)
    labelled = kp3d[0, :, 3] > 0
    proj = project_points(kp3d[:, labelled, :3].astype(np.float64), k.astype(np.float64))
    assert np.abs(proj - kp2d[:, labelled, :2]).max() < 1.0
    assert store.read("extra_reprojection_px").max() < 1.0


def test_hips_the_source_gets_wrong_do_not_bend_the_camera(tmp_path):
    root = tmp_path / "mupots"
    write_mupots_sequence(root, "TS6", np.ones((3, 2), int), np.random.default_rng(4), hip_offset_px=25.0)
    _, store = convert("mupots3d", root, tmp_path / "out", "test", sequences="TS6")
    fx, fy, cx, cy, *_ = CAMERAS["TS6"]
    np.testing.assert_allclose(store.read("cam_intrinsics")[0], [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rtol=1e-4)
    err = store.read("extra_reprojection_px")
    np.testing.assert_allclose(err[:, [8, 11]], 25.0, atol=0.5)  # reported, not hidden
    assert np.delete(err, [8, 11], axis=1).max() < 1.0


def test_invalid_cells_kept_on_request(tmp_path):
    root = tmp_path / "mupots"
    write_mupots_sequence(root, "TS1", np.array([[1, 1], [1, 0], [0, 1]]), np.random.default_rng(5),
                          posed_invalid=((1, 1),))
    _, default = convert("mupots3d", root, tmp_path / "a", "test", sequences="TS1")
    assert len(default.read("source_key")) == 4
    _, store = convert("mupots3d", root, tmp_path / "b", "test", sequences="TS1", valid_only=False)
    # the posed invalid cell (frame 1, person 1) is added; the empty one (frame 2, person 0) never
    assert list(store.read("source_key")) == [f"TS1/annot.mat:frame {f}:person {p}"
                                              for f, p in ((0, 0), (0, 1), (1, 0), (1, 1), (2, 1))]
    assert list(store.read("extra_valid_frame")) == [1, 1, 1, 0, 1]


def test_empty_cells_are_invalid_and_malformed_cells_are_errors(tmp_path):
    from scipy.io import loadmat, savemat

    root = tmp_path / "mupots"
    write_mupots_sequence(root, "TS1", np.ones((2, 2), int), np.random.default_rng(6))
    path = root / "MultiPersonTestSet" / "TS1" / "annot.mat"
    cells = loadmat(path)["annotations"]
    cells[1, 0] = np.zeros((0, 0))
    savemat(path, {"annotations": cells})
    _, store = convert("mupots3d", root, tmp_path / "a", "test", sequences="TS1")
    assert list(store.read("source_key")) == [f"TS1/annot.mat:frame {f}:person {p}"
                                              for f, p in ((0, 0), (0, 1), (1, 1))]
    cells[0, 1] = {"annot2": np.zeros((2, 16)), "annot3": np.zeros((3, 17)),
                   "univ_annot3": np.zeros((3, 17)), "isValidFrame": np.ones((1, 1))}
    savemat(path, {"annotations": cells})
    with pytest.raises(DatasetFormatError, match=r"annotations\{1,2\}"):
        convert("mupots3d", root, tmp_path / "b", "test", sequences="TS1")


def test_bad_input_names_the_file(raw, tmp_path):
    root, _ = raw
    with pytest.raises(HmrError, match="TS21"):
        convert("mupots3d", root, tmp_path / "o1", "test", sequences="TS21")
    with pytest.raises(DatasetFormatError, match="TS2"):
        convert("mupots3d", root, tmp_path / "o2", "test", sequences="TS2")
    (root / "MultiPersonTestSet" / "TS6" / "img_000001.jpg").unlink()
    result, _ = convert("mupots3d", root, tmp_path / "o3", "test", sequences="TS6", skip_bad=True)
    assert {b.record for b in result.skipped} == {f"TS6/annot.mat:frame 1:person {p}" for p in range(3)}
    (root / "MultiPersonTestSet" / "TS1" / "occlusion.mat").unlink()
    with pytest.raises(DatasetFormatError, match="occlusion.mat"):
        convert("mupots3d", root, tmp_path / "o4", "test", sequences="TS1")
    truncate(root / "MultiPersonTestSet" / "TS6" / "annot.mat")
    with pytest.raises(DatasetFormatError, match="annot.mat"):
        convert("mupots3d", root, tmp_path / "o5", "test", sequences="TS6")


def test_image_size_table_matches_the_publisher():
    assert [mupots3d.image_hw(f"TS{i}") for i in (1, 5, 6, 20)] == [(2048, 2048)] * 2 + [(1080, 1920)] * 2
