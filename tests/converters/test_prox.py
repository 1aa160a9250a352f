"""PROX converter: mirrored colour frames written un-mirrored, OpenPose keypoints, SMPL-X fits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError
from hmr.core.schema import GENDERS
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.prox import OPENPOSE25, body25_array, smplx_fit, write_prox

SMPLX_KEYS = ("global_orient", "body_pose", "betas", "left_hand_pose", "right_hand_pose", "jaw_pose",
              "leye_pose", "reye_pose", "expression", "transl")


def _colour_at(image: np.ndarray, xy) -> str:
    b, _, r = image[round(float(xy[1])), round(float(xy[0]))].astype(int)
    return "red" if r > 200 and b < 60 else "blue" if b > 200 and r < 60 else "other"


def test_left_wrist_is_on_the_persons_left_in_the_stored_image(tmp_path):
    """The raw frame is mirrored: the stored (un-mirrored) frame shows the red left-wrist marker
    exactly where the left-wrist keypoint is, on the image's right for a person facing us."""
    raw = tmp_path / "raw"
    wrote = write_prox(raw, "train", n=2)
    result, store = convert("prox", raw, tmp_path / "out", "train")
    assert len(store) == 2 and not result.skipped
    for i, frame in enumerate(wrote["frames"]):
        s = store[i]
        rec = wrote["recording"]
        assert s["image_path"] == f"unmirrored/{rec}/Color/{frame}.jpg"
        stored = cv2.imread(str(raw / s["image_path"]))
        mirrored = cv2.imread(str(raw / "recordings" / rec / "Color" / f"{frame}.jpg"))
        left = s["keypoints2d"][slot("left_wrist_openpose")]
        right = s["keypoints2d"][slot("right_wrist_openpose")]
        assert left[2] > 0 and right[2] > 0
        assert _colour_at(stored, left) == "red" and _colour_at(stored, right) == "blue"
        assert _colour_at(mirrored, left) != "red"  # the raw frame would disagree
        assert left[0] > right[0]  # facing the camera: the person's left is the image's right
        assert tuple(s["image_hw"]) == (1080, 1920)


def test_keypoints_slots_confidences_and_box(tmp_path):
    raw = tmp_path / "raw"
    wrote = write_prox(raw, "train", n=1)
    _, store = convert("prox", raw, tmp_path / "out", "train")
    s, body = store[0], wrote["bodies"][0]
    for name, slot_name in (("LWrist", "left_wrist_openpose"), ("RAnkle", "right_ankle_openpose"),
                            ("MidHip", "mid_hip_openpose"), ("LBigToe", "left_big_toe_openpose")):
        np.testing.assert_allclose(s["keypoints2d"][slot(slot_name)], body[OPENPOSE25.index(name)], atol=1e-3)
    assert s["keypoints2d"][slot("left_hand_root"), 2] == pytest.approx(0.6)  # OpenPose hand points
    assert s["keypoints2d"][slot("right_contour_1"), 2] == pytest.approx(0.7)  # face[0]
    assert s["keypoints2d"][slot("left_wrist"), 2] == 0  # the annotated slot is not OpenPose's
    assert not s["keypoints3d"][:, 3].any() and not s["has_smpl"]
    x, _, w, _ = s["bbox_xywh"]
    assert x < body[:, 0].min() and x + w > body[:, 0].max()
    np.testing.assert_allclose(s["cam_intrinsics"][[0, 1, 0, 1], [0, 1, 2, 2]], (1060.53, 1060.38, 951.30, 536.77),
                               rtol=1e-6)
    assert GENDERS[s["gender"]] == "male" and s["subject_id"] == "00142" and s["frame_index"] == 1


def test_smplx_kept_losslessly_with_pca_hands(tmp_path):
    raw = tmp_path / "raw"
    wrote = write_prox(raw, "train", n=2, recording="MPH16_00157_01")
    _, store = convert("prox", raw, tmp_path / "out", "train")
    for i, fit in enumerate(wrote["fits"]):
        s = store[i]
        for key in SMPLX_KEYS:
            np.testing.assert_array_equal(s[f"extra_smplx_{key}"], fit[key].reshape(-1))
        assert s["extra_smplx_left_hand_pose"].shape == (12,) and s["extra_smplx_hand_pca"] == 12
        assert s["extra_smplx_flat_hand_mean"] == 0 and s["extra_smplx_in_camera_frame"] == 1
        np.testing.assert_array_equal(s["extra_smplx_pose_embedding"], fit["pose_embedding"].reshape(-1))
        # scene -> camera is the inverse of the published camera -> scene matrix
        np.testing.assert_allclose(s["cam_extrinsics"] @ wrote["cam2world"], np.eye(4), atol=1e-5)


def test_female_subject_and_quantitative_mosh_split(tmp_path):
    raw = tmp_path / "raw"
    write_prox(raw / "qual", "train", n=1, recording="N0Sofa_03452_01")
    _, store = convert("prox", raw / "qual", tmp_path / "out", "train")
    assert GENDERS[store[0]["gender"]] == "female"
    wrote = write_prox(raw / "quant", "test", n=2, recording="vicon_03301_01")
    _, store = convert("prox", raw / "quant", tmp_path / "out2", "test")
    assert len(store) == 2 and GENDERS[store[0]["gender"]] == "male"
    s = store[0]
    assert s["extra_smplx_in_camera_frame"] == 0 and s["has_extrinsics"]
    expected = np.linalg.inv(wrote["cam2world"]) @ wrote["vicon2scene"]  # Vicon -> camera
    np.testing.assert_allclose(s["cam_extrinsics"], expected, atol=1e-5)
    assert s["source_key"].startswith("fittings/mosh/vicon_03301_01/results/")


def test_bad_fits_and_missing_frames_are_bad_records(tmp_path):
    raw = tmp_path / "raw"
    rng = np.random.default_rng(1)
    fits = [smplx_fit(rng) for _ in range(4)]
    fits[1]["body_pose"] = fits[1]["body_pose"][:, :30]
    fits[2]["transl"][0, 0] = np.nan
    wrote = write_prox(raw, "train", n=4, fits=fits, bodies=[body25_array()] * 4)
    rec = wrote["recording"]
    (raw / "recordings" / rec / "Color" / f"{wrote['frames'][3]}.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="000.pkl"):
        convert("prox", raw, tmp_path / "out", "train")
    result, store = convert("prox", raw, tmp_path / "out2", "train", skip_bad=True)
    assert len(store) == 1 and len(result.skipped) == 3
    reasons = " | ".join(f"{b.path} {b.record} {b.message}" for b in result.skipped)
    assert "'body_pose' holds 30 values" in reasons and "NaN" in reasons and "colour frame is missing" in reasons
    assert f"{rec}/{wrote['frames'][1]}" in reasons


def test_missing_fits_folder_names_it(tmp_path):
    (tmp_path / "raw" / "recordings").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="PROXD"):
        convert("prox", tmp_path / "raw", tmp_path / "out", "train")


def test_stride_and_unsafe_pickle(tmp_path):
    raw = tmp_path / "raw"
    wrote = write_prox(raw, "train", n=3)
    _, store = convert("prox", raw, tmp_path / "out", "train", stride=2)
    assert [store[i]["frame_index"] for i in range(len(store))] == [1, 3]
    evil = raw / "PROXD" / wrote["recording"] / "results" / wrote["frames"][0] / "000.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(Exception, match="(?i)pickle|not allowed|forbidden"):
        convert("prox", raw, tmp_path / "out2", "train")


@pytest.mark.slow
def test_fit_projects_onto_the_keypoints_in_the_stored_frame(tmp_path):
    """The SMPL-X fit's left wrist, through the body model and the PROXD intrinsics, lands on
    the left-wrist keypoint of the stored image (needs the SMPL-X body model)."""
    smplx_model = pytest.importorskip("hmr.core.body.smplx_model",
                                      reason="SMPL-X body model not in this tree yet")
    import torch

    model = smplx_model.load_smplx_model()
    rng = np.random.default_rng(2)
    fit = smplx_fit(rng)
    k = np.array([[1060.53, 0, 951.30], [0, 1060.38, 536.77], [0, 0, 1]])

    def forward(f):
        with torch.no_grad():
            hands = {side: model.hand_pca_to_axis_angle(torch.as_tensor(f[f"{side}_hand_pose"]), side)
                     for side in ("left", "right")}
            out = model(global_orient=torch.as_tensor(f["global_orient"]),
                        body_pose=torch.as_tensor(f["body_pose"]), betas=torch.as_tensor(f["betas"]),
                        left_hand_pose=hands["left"], right_hand_pose=hands["right"],
                        jaw_pose=torch.as_tensor(f["jaw_pose"]), expression=torch.as_tensor(f["expression"]),
                        transl=torch.as_tensor(f["transl"]))
        joints = out.joints55[0].numpy().astype(np.float64)
        uvw = joints @ k.T
        return uvw[:, :2] / uvw[:, 2:]

    px = forward(fit)
    body = body25_array()
    body[OPENPOSE25.index("LWrist"), :2], body[OPENPOSE25.index("RWrist"), :2] = px[20], px[21]
    write_prox(tmp_path / "raw", "train", n=1, fits=[fit], bodies=[body])
    _, store = convert("prox", tmp_path / "raw", tmp_path / "out", "train")
    s = store[0]
    stored = {key: s[f"extra_smplx_{key}"][None] for key in SMPLX_KEYS}
    again = forward(stored)
    np.testing.assert_allclose(again[20], s["keypoints2d"][slot("left_wrist_openpose"), :2], atol=0.5)
    image = cv2.imread(str(tmp_path / "raw" / s["image_path"]))
    assert _colour_at(image, again[20]) == "red"


def test_mosh_fits_carry_no_proxd_only_columns_and_proxd_needs_them(tmp_path):
    raw = tmp_path / "raw"
    write_prox(raw / "quant", "test", n=1, recording="vicon_03301_01")
    _, store = convert("prox", raw / "quant", tmp_path / "out", "test")
    assert "extra_smplx_pose_embedding" not in store[0] and store[0]["extra_smplx_hand_pca"] == 12
    rng = np.random.default_rng(4)
    fit = smplx_fit(rng)
    del fit["pose_embedding"]
    write_prox(raw / "qual", "train", n=2, fits=[fit, smplx_fit(rng)])
    result, store = convert("prox", raw / "qual", tmp_path / "out2", "train", skip_bad=True)
    assert len(store) == 1 and "lacks 'pose_embedding'" in result.skipped[0].message


def test_broken_side_files_are_errors_naming_them(tmp_path):
    raw = tmp_path / "raw"
    wrote = write_prox(raw, "train", n=1)
    (raw / "cam2world" / "BasementSittingBooth.json").write_text("[[0, 0], [0, 0]]")
    with pytest.raises(DatasetFormatError, match="BasementSittingBooth.json"):
        convert("prox", raw, tmp_path / "out", "train")
    (raw / "cam2world" / "BasementSittingBooth.json").unlink()  # optional: no extrinsics then
    kp = raw / "keypoints" / wrote["recording"] / f"{wrote['frames'][0]}_keypoints.json"
    kp.write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    with pytest.raises(DatasetFormatError, match="_keypoints.json"):
        convert("prox", raw, tmp_path / "out2", "train")
