"""Penn Action: 2,326 sports videos, 13 joints and a person box per frame (one person).

Raw layout (``Penn_Action.tar.gz`` unpacked; ``ROOT`` is its ``Penn_Action`` folder)::

    ROOT/labels/0001.mat ... 2326.mat      # one MATLAB v5 file per video
    ROOT/frames/0001/000001.jpg ...        # frame t (0-based row) is %06d.jpg of t + 1

Variables of a label file (read on all 2,326 real label files, as republished in
samaonline/Hierarchical-Model-for-Long-term-Video-Prediction ``labels/``):
``x``, ``y`` (nframes, 13) float64 px; ``visibility`` (nframes, 13) uint8 0/1; ``bbox``
(nframes, 4) float64 corners x1, y1, x2, y2; ``dimensions`` (1, 3) [height, width,
nframes]; ``nframes``; ``train`` (1 = train, -1 = test); ``action``; ``pose`` (camera view:
front, back, left, right). Split ``train`` = videos with ``train == 1`` (1,258), ``test`` =
``train == -1`` (1,068).

Joint order and sides (convention ``"penn_action"``). The README names the joints head,
left_shoulder, right_shoulder, left_elbow, right_elbow, left_wrist, right_wrist, left_hip,
right_hip, left_knee, right_knee, left_ankle, right_ankle, but the data have the sides the
other way round: index 1 is the person's RIGHT shoulder (and 3, 5, 7, 9, 11 the right elbow,
wrist, hip, knee, ankle). Evidence, from the real files:

- all 2,326 files, frames where both joints are visible: in 'front' views (person facing
  the camera, so the person's right side is on the image's left) index 1 is left of
  index 2 in 30,807 of 31,812 frames (96.8%), and the hips 7 vs 8 in 30,023 of 30,942
  (97.0%); in 'back' views index 1 is right of index 2 in 17,097 of 20,914 (81.7%);
- the three label files in the test fixtures: in 0015.mat ('front', 270 x 481 px), frames
  61-82 (after the pitch, facing the camera) have index 1 left of index 2 in all 22 frames,
  e.g. frame 61 x = 304 vs 335 px, and the same for elbows 3/4, hips 7/8 and knees 9/10;
  in 0001.mat ('back', 360 x 480 px) frames 1-25 have index 1 right of index 2 in all 25
  (frame 1: x = 135 vs 103 px; elbows and knees alike), with joints 1, 3, 5, 7 visible
  and 2, 4, 6, 8 hidden in frame 1. 0002.mat ('back') has the opposite order in its
  frames 1-25: single videos are not all consistent, the majority over all files decides.

Penn Action's own README is therefore not followed for sides; the convention keeps its
names but maps each to the opposite superset side (``hmr conventions penn_action``).
Human Dynamics (``read_upenn.py``) reads index 1 as the right shoulder; MMHuman3D's
keypoint table (``keypoints_mapping/penn_action.py``) follows the README and swaps every side. 'head' is a point on the head, stored in
the head-top slot.

Visibility. ``visibility`` 0 joints still carry annotated coordinates (not zeros), so they
are labelled-but-occluded: confidence 1 at their position, like visible ones, with the raw
flag kept in ``extra_visibility`` (13,) uint8. ``-o visibility=visible`` gives flag-0
joints confidence 0 instead (Human Dynamics' reading). A joint at exactly (0, 0) with flag 0
is not labelled (confidence 0): 0449.mat frame 77 and 2173.mat frame 88 are all zeros;
frames without any labelled joint are dropped (not reported). Any other flag value is an
error naming the file.

Box: the frame's ``bbox`` row, (x1, y1, x2, y2) -> ``bbox_xywh`` (x1, y1, x2 - x1,
y2 - y1). Where the row is missing or not a box (x2 <= x1 or y2 <= y1), the labelled-joint
extent enlarged x1.2 (hmr.core.boxes) is used instead and ``extra_bbox_from_joints`` is 1:
1154.mat and 1865.mat have one ``bbox`` row fewer than frames, and 184 labelled frames of
the real files (153 in 0623.mat, the rest in 0038, 0374, 0525, 0541, 0600, 0645, 0700 and
1825.mat) have a zero-size box (x2 = x1, y2 = y1; 109 with one visible joint, 74 with
none, 1 with three). A non-finite row is a bad record. All 2,326 real label files convert
(76,297 test + 87,542 train frames = 163,841 less the two all-zero frames).

Joints outside the frame: in 0979, 1021, 1024 and 1032.mat 901 coordinates lie more than
20 px outside ``dimensions`` (x up to 600 in 480-wide frames); they are kept as written
(the frames were not available to tell whether ``dimensions`` or the joints are off).
Coordinates are used as written
(``x``/``y``/``bbox`` are float64 in 2,195 files, uint16 or uint8 in 131; read as float64).

``image_hw`` is ``dimensions`` (height, width); with image checks on, each frame file must
exist and the first frame's header must match ``dimensions``. ``sequence`` is the video
number (``"0001"``), ``frame_index`` the 0-based row, ``person_id`` 0, ``source_key``
``<video>.mat[<row>]``; ``extra_action`` and ``extra_view`` keep ``action`` and ``pose``.
Every frame is converted (MMHuman3D keeps every 10th: subsample at training time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import image_size_hw, read_mat
from hmr.core.boxes import bbox_from_keypoints, bbox_from_xyxy
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["penn_action"]
VERSION = "1"

OPTIONS = (
    Option("visibility", "labelled", str, "labelled: every annotated joint confidence 1, the "
           "flag kept in extra_visibility; visible: flag-0 joints confidence 0 (Human Dynamics)",
           choices=("labelled", "visible")),
)

NUM_JOINTS = 13
SPLIT_FLAG = {"train": 1, "test": -1}
VARIABLES = ("x", "y", "visibility", "bbox", "dimensions", "nframes", "train", "action", "pose")


@dataclass
class Video:
    """One label file: per-frame joints (T, 13) and boxes (B <= T, 4), the rest per video."""

    name: str                # "0001"
    path: Path
    x: np.ndarray            # (T, 13) px
    y: np.ndarray            # (T, 13) px
    visibility: np.ndarray   # (T, 13) 0/1
    bbox: np.ndarray         # (B, 4) x1, y1, x2, y2; B is T or T - 1
    image_hw: tuple[int, int]
    train: int               # 1 train, -1 test
    action: str
    view: str


def _text(value: object) -> str:
    arr = np.asarray(value).reshape(-1)
    return str(arr[0]) if arr.size else ""


def read_video(path: Path) -> Video:
    """A label file, checked: shapes agree with ``nframes``, flags are 0/1."""
    mat = read_mat(path)
    missing = [v for v in VARIABLES if v not in mat]
    if missing:
        raise DatasetFormatError(f"no variable(s) {', '.join(missing)} in the label file", path=path)
    n = int(np.asarray(mat["nframes"]).reshape(-1)[0])
    x, y = np.asarray(mat["x"], np.float64), np.asarray(mat["y"], np.float64)
    vis, bbox = np.asarray(mat["visibility"]), np.asarray(mat["bbox"], np.float64)
    for name, arr in (("x", x), ("y", y), ("visibility", vis)):
        if arr.shape != (n, NUM_JOINTS):
            raise DatasetFormatError(f"'{name}' has shape {arr.shape}, expected ({n}, 13) for "
                                     f"nframes = {n}", path=path)
    if bbox.ndim != 2 or bbox.shape[1] != 4 or bbox.shape[0] > n:
        raise DatasetFormatError(f"'bbox' has shape {bbox.shape}, expected (<= {n}, 4)", path=path)
    if not np.isin(vis, (0, 1)).all():
        raise DatasetFormatError("'visibility' holds values other than 0 and 1", path=path)
    dims = np.asarray(mat["dimensions"]).reshape(-1)
    if dims.size != 3 or (dims[:2] <= 0).any():
        raise DatasetFormatError(f"'dimensions' {dims.tolist()} is not [height, width, nframes]", path=path)
    train = int(np.asarray(mat["train"]).reshape(-1)[0])
    if train not in (1, -1):
        raise DatasetFormatError(f"'train' is {train}, expected 1 (train) or -1 (test)", path=path)
    return Video(path.stem, path, x, y, vis.astype(np.uint8), bbox, (int(dims[0]), int(dims[1])),
                 train, _text(mat["action"]), _text(mat["pose"]))


def label_files(root: Path) -> list[Path]:
    folder = Path(root) / "labels"
    if not folder.is_dir():
        raise DatasetFormatError("no labels/ folder (expected labels/NNNN.mat)", path=folder)
    files = sorted(folder.glob("*.mat"))
    if not files:
        raise DatasetFormatError("no .mat label files", path=folder)
    return files


def raw_files(root: Path, split: str) -> list[Path]:
    folder = Path(root) / "labels"
    return sorted(folder.glob("*.mat")) if folder.is_dir() else []


def frame_keypoints(video: Video, t: int, visible_only: bool) -> np.ndarray:
    """(13, 3) x, y, confidence of row ``t``, native order."""
    kps = np.stack([video.x[t], video.y[t], np.ones(NUM_JOINTS)], axis=1)
    unlabelled = (video.x[t] == 0) & (video.y[t] == 0) & (video.visibility[t] == 0)
    if visible_only:
        unlabelled |= video.visibility[t] == 0
    kps[unlabelled] = 0.0
    return kps


def frame_box(video: Video, t: int, kps: np.ndarray) -> tuple[np.ndarray, bool] | str:
    """(``bbox_xywh``, True if made from the joints) of row ``t``, or why there is none."""
    if t < len(video.bbox):
        row = video.bbox[t]
        if not np.isfinite(row).all():
            return f"box {row.tolist()} is not finite"
        if row[2] > row[0] and row[3] > row[1]:
            return bbox_from_xyxy(row), False
    # no row (1154.mat, 1865.mat) or a zero-size one (184 frames, e.g. 0623.mat): the joints
    box = bbox_from_keypoints(kps)
    if box is None:
        return "no usable bbox row and fewer than two labelled joints"
    return box, True


def video_samples(root: Path, video: Video, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    visible_only = get_option(options, OPTIONS, "visibility") == "visible"
    rel = f"frames/{video.name}"
    if options.check_images:
        first = root / rel / "000001.jpg"
        try:
            size = image_size_hw(first)
        except DatasetFormatError as exc:
            yield BadRecord(str(first), f"{video.path.name}", exc.message)
            return
        if size != video.image_hw:
            yield BadRecord(str(first), video.path.name, f"frame is {size[0]} x {size[1]} px but "
                            f"'dimensions' says {video.image_hw[0]} x {video.image_hw[1]}")
            return
    for t in range(len(video.x)):
        key = f"{video.path.name}[{t}]"
        image = f"{rel}/{t + 1:06d}.jpg"
        if not (np.isfinite(video.x[t]).all() and np.isfinite(video.y[t]).all()):
            yield BadRecord(str(video.path), key, "joint coordinates contain NaN or inf")
            continue
        kps = frame_keypoints(video, t, visible_only)
        if not kps[:, 2].any():
            continue  # no labelled joint (0449.mat, 2173.mat: a last frame of zeros)
        box = frame_box(video, t, kps)
        if isinstance(box, str):
            yield BadRecord(str(video.path), key, box)
            continue
        box, from_joints = box
        if options.check_images and not (root / image).is_file():
            yield BadRecord(str(root / image), key, "frame image is missing")
            continue
        yield {"image_path": image, "image_hw": np.asarray(video.image_hw, dtype=np.int32),
               "bbox_xywh": box, "extra_bbox_from_joints": np.uint8(from_joints),
               "keypoints2d": to_superset(kps, "penn_action"),
               "sequence": video.name, "frame_index": t, "person_id": 0, "source_key": key,
               "extra_visibility": video.visibility[t].copy(), "extra_action": video.action,
               "extra_view": video.view}


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    for path in label_files(root):
        video = read_video(path)  # one small file at a time: memory stays per video
        if video.train == SPLIT_FLAG[split]:
            yield from video_samples(root, video, options)
