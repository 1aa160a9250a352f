"""InstaVariety (HMMR tfrecords): keypoints by anatomy in crop pixels, the [-1, 1] train
normalisation, unlabelled joints, crops written as the store's images, sequences, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.instavariety import crop_pixels
from hmr.core.errors import DatasetFormatError
from tests.fixtures.converters_2d import convert, slot
from tests.fixtures.tfrecord import (
    CROP,
    example_bytes,
    hmmr_example,
    make_track,
    write_hmmr,
    write_tfrecord,
)

# HMMR's joint indices (human_dynamics video_in_the_wild_to_tfrecords.py, joint_names_coco)
# and the superset slot of each anatomical joint; OpenPose detections.
ANATOMY = {
    24: "right_ankle_openpose", 23: "left_ankle_openpose",   # 'R Ankle', 'L Ankle'
    1: "right_knee_openpose", 4: "left_knee_openpose",       # 'R Knee', 'L Knee'
    2: "right_hip_openpose", 3: "left_hip_openpose",         # 'R Hip', 'L Hip'
    6: "right_wrist_openpose", 11: "left_wrist_openpose",    # 'R Wrist', 'L Wrist'
    7: "right_elbow_openpose", 10: "left_elbow_openpose",    # 'R Elbow', 'L Elbow'
    8: "right_shoulder_openpose", 9: "left_shoulder_openpose",  # 'R Shoulder', 'L Shoulder'
    12: "neck_openpose", 14: "nose_openpose",                # 'Neck', 'Nose'
}
HEAD = 13  # 'Head': always (0, 0, 0) in the OpenPose-derived files


def _all_tracks(written):
    return [t for tracks in written.values() for t in tracks]


@pytest.mark.parametrize("split", ["train", "test"])
def test_joints_land_by_anatomy_at_crop_pixels(tmp_path, split):
    written = write_hmmr(tmp_path / "iv", split, hidden={1: [6, 20]})
    _, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", split)
    kps = store.read("keypoints2d")
    raw = np.concatenate([t.keypoints for t in _all_tracks(written)])  # (n, 25, 3) crop px
    assert len(kps) == len(raw) == 9
    for hmmr, name in ANATOMY.items():
        visible = raw[:, hmmr, 2] > 0
        assert (kps[visible, slot(name), 2] == 1).all(), name
        # train: decoded from 2 x / 224 - 1 stored as float32
        np.testing.assert_allclose(kps[visible, slot(name), :2], raw[visible, hmmr, :2], atol=2e-3)
        # not detected: unlabelled, never a point with confidence (test files keep a position)
        assert (kps[~visible, slot(name)] == 0).all(), name
    assert (~(raw[1, [6, 20], 2] > 0)).all() and (kps[1, slot("right_wrist_openpose")] == 0).all()
    assert (kps[:, slot("head_top"), 2] == 0).all() and (raw[:, HEAD, 2] == 0).all()
    # every visible joint lands in one slot of its own, nothing else is labelled
    np.testing.assert_array_equal((kps[..., 2] > 0).sum(axis=1), (raw[..., 2] > 0).sum(axis=1))


def test_normalisation_inverse_matches_the_writer():
    # tube_augmentation.py: u = 2 * x / 224 - 1; VIBE insta_utils.py: x = (u + 1) / 2 * 224
    raw = np.zeros((25, 3))
    raw[:3] = [[-1.0, -1.0, 1], [0.0, 0.5, 1], [1.0, 0.25, 1]]
    raw[3] = [0.0, 0.0, 0]  # the writer's zeroed invisible joint: not the crop centre
    px = crop_pixels(raw, (CROP, CROP), normalised=True)
    np.testing.assert_allclose(px[:4], [[0, 0, 1], [112, 168, 1], [224, 140, 1], [0, 0, 0]])
    np.testing.assert_allclose(crop_pixels(raw, (CROP, CROP), normalised=False)[:3, :2], raw[:3, :2])


def test_crops_become_the_images_with_sequences(tmp_path):
    written = write_hmmr(tmp_path / "iv", "train")
    _, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "train")
    files = list(written)
    stem0 = files[0][: -len(".tfrecord")]
    paths = list(store.read("image_path"))
    assert paths[:4] == [f"crops/train/{stem0}/00000/0000.jpg", f"crops/train/{stem0}/00000/0001.jpg",
                         f"crops/train/{stem0}/00000/0002.jpg", f"crops/train/{stem0}/00001/0000.jpg"]
    jpegs = [j for t in _all_tracks(written) for j in t.jpegs]
    assert [(tmp_path / "iv" / p).read_bytes() for p in paths] == jpegs  # unchanged bytes
    assert store.attrs["image_root"] == str((tmp_path / "iv").resolve())
    np.testing.assert_array_equal(store.read("image_hw"), np.full((9, 2), CROP))
    assert list(store.read("sequence")) == [f"{stem0}/00000"] * 3 + [f"{stem0}/00001"] * 2 + [
        f"{files[1][:-9]}/00000"] * 4
    assert list(store.read("frame_index")) == [0, 1, 2, 0, 1, 0, 1, 2, 3]
    assert set(store.read("person_id")) == {0}
    assert store.read("source_key")[4] == f"train/{files[0]}:1:1"
    assert list(store.read("extra_original_frame")[:2]) == _all_tracks(written)[0].filenames[:2]
    # a second run replaces the track folders and leaves no temporary folder behind
    convert("instavariety", tmp_path / "iv", tmp_path / "out2", "train")
    assert sorted(p.name for p in (tmp_path / "iv" / "crops" / "train" / stem0).iterdir()) == ["00000", "00001"]


def test_box_is_visible_keypoint_extent_times_1_2(tmp_path):
    written = write_hmmr(tmp_path / "iv", "test", hidden={0: [0, 5]})
    _, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "test")
    for box, kp in zip(store.read("bbox_xywh"), np.concatenate([t.keypoints for t in _all_tracks(written)])):
        xy = kp[kp[:, 2] > 0, :2]
        lo, hi = xy.min(0), xy.max(0)
        np.testing.assert_allclose(box[:2] + box[2:] / 2, (lo + hi) / 2, atol=1e-3)
        np.testing.assert_allclose(box[2:], 1.2 * (hi - lo), atol=1e-3)


def test_missing_toe_pts_leaves_the_feet_unlabelled(tmp_path):
    # VIBE / hmr-benchmarks crash here (np.zeros(n, 3, 6))
    write_hmmr(tmp_path / "iv", "train", files=((2,),), toe_pts=False)
    _, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "train")
    kps = store.read("keypoints2d")
    for name in ("left_big_toe_openpose", "right_small_toe_openpose", "left_ankle_openpose",
                 "right_ankle_openpose"):
        assert (kps[:, slot(name)] == 0).all()
    assert (kps[:, slot("right_knee_openpose"), 2] == 1).all()


def test_untrimmed_filenames_are_not_paired_with_frames(tmp_path):
    rng = np.random.default_rng(1)
    track = make_track(rng, 3, 7)
    write_tfrecord(tmp_path / "iv" / "train" / "a.tfrecord",
                   [hmmr_example(track, train=True, extra_filenames=4)])
    _, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "train")
    assert list(store.read("extra_original_frame")) == ["", "", ""]


def test_frames_with_fewer_than_two_joints_are_skipped(tmp_path):
    rng = np.random.default_rng(2)
    track = make_track(rng, 3, 9, hidden={1: [j for j in range(25) if j != 4]})
    write_tfrecord(tmp_path / "iv" / "train" / "a.tfrecord", [hmmr_example(track, train=True)])
    result, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "train")
    assert list(store.read("frame_index")) == [0, 2] and result.skipped == []


BROKEN = {  # a track that is a valid Example but not a valid HMMR track -> message
    "short": ({"image/xys": ("float", np.zeros(2 * 14 * 2 - 1))}, "image/xys' has 55 values"),
    "type": ({"image/visibilities": ("float", np.ones(28))}, "holds float_list, expected int64_list"),
    "missing": ({"image/encoded": None}, "image/encoded' is missing"),
    "not_jpeg": ({"image/encoded": ("bytes", [b"\x89PNG", b"\x89PNG"])}, "not a JPEG"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_bad_track_fails_with_file_and_record_or_is_skipped(tmp_path, broken):
    rng = np.random.default_rng(3)
    good, bad = make_track(rng, 2, 1), make_track(rng, 2, 2)
    hmmr_example(bad, train=True)
    change, message = BROKEN[broken]
    feats = {k: v for k, v in {**bad.features, **change}.items() if v is not None}
    path = write_tfrecord(tmp_path / "iv" / "train" / "a.tfrecord",
                          [hmmr_example(good, train=True), example_bytes(feats), hmmr_example(good, train=True)])
    with pytest.raises(DatasetFormatError, match=message) as err:
        convert("instavariety", tmp_path / "iv", tmp_path / "out", "train")
    assert err.value.path == str(path) and err.value.record == 1
    result, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("source_key")) == ["train/a.tfrecord:0:0", "train/a.tfrecord:0:1",
                                              "train/a.tfrecord:2:0", "train/a.tfrecord:2:1"]
    report = json.loads(result.skipped_report.read_text())
    assert [(r["path"], r["record"]) for r in report] == [(str(path), 1)]


def test_size_disagreement_is_a_bad_frame(tmp_path):
    rng = np.random.default_rng(4)
    track = make_track(rng, 2, 3)
    hmmr_example(track, train=True)
    feats = dict(track.features)
    feats["image/heightwidths"] = ("int64", [[CROP, CROP], [CROP, 300]])
    write_tfrecord(tmp_path / "iv" / "train" / "a.tfrecord", [example_bytes(feats)])
    result, store = convert("instavariety", tmp_path / "iv", tmp_path / "out", "train", skip_bad=True)
    assert list(store.read("frame_index")) == [0]
    assert "heightwidths" in result.skipped[0].message and result.skipped[0].record == "0:1"


def test_corrupt_file_names_the_file_and_record(tmp_path):
    write_hmmr(tmp_path / "iv", "train", files=((2, 2),))
    path = next((tmp_path / "iv" / "train").glob("*.tfrecord"))
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF  # inside the last record's data
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetFormatError, match="CRC") as err:
        convert("instavariety", tmp_path / "iv", tmp_path / "out", "train", skip_bad=True)
    assert err.value.path == str(path) and err.value.record == 1


def test_missing_split_folder_points_to_the_nested_release(tmp_path):
    write_hmmr(tmp_path / "dl" / "insta_variety", "train", files=((2,),))
    with pytest.raises(DatasetFormatError, match="pass --root .*insta_variety"):
        convert("instavariety", tmp_path / "dl", tmp_path / "out", "train")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match="no \\*.tfrecord"):
        convert("instavariety", tmp_path / "empty", tmp_path / "out", "train")
