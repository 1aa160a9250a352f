"""InstaVariety (HMMR's released tfrecords): person crops with OpenPose-derived 2D keypoints,
one sample per frame of each track. VLOG-people ships in the same format
(:mod:`converters.vlog` is this reader with its own header).

Raw layout (the tarball linked from human_dynamics ``doc/insta_variety.md``, unpacked; ROOT is
the ``insta_variety/`` folder)::

    ROOT/train/*.tfrecord     # insta_variety_NN_copyMM_<model>.tfrecord, ~50 tracks each
    ROOT/test/*.tfrecord      # <tag>_<video id>.tfrecord, one video each

Reading is done without TensorFlow (:mod:`converters.tfrecord`: framing CRCs checked, the
protobuf decoded by hand). Every record is one ``tf.train.Example`` (not a SequenceExample)
holding one track of N frames, written by human_dynamics ``src/datasets/common.py``
(``convert_to_example_temporal``); each per-frame value is flattened into one list:

============================  ==========  ===============================================
key                           list        content (read from the writer)
============================  ==========  ===============================================
``meta/N``                    int64 (1)   number of frames N
``image/encoded``             bytes (N)   one JPEG per frame: the 224 x 224 crop
``image/heightwidths``        int64 (2N)  the crop's (height, width) per frame
``image/xys``                 float (28N) per frame (2, 14): the x row, then the y row
``image/visibilities``        int64 (14N) per frame (14,): 1 visible, 0 not
``image/face_pts``            float (15N) per frame (3, 5): x row, y row, visibility row
``image/toe_pts``             float (18N) per frame (3, 6), same layout (may be absent)
``image/filenames``           bytes       the original frames on the authors' disk
``image/phis``                float       2048-D HMR features per frame (train only)
``meta/time_pts``             int64 (2)   track start/end (test only)
``image/centers``, ``image/scale_factors``, ``image/crop_pts``, ``image/cams``,
``mosh/*``, ``meta/has_3d*``  --          crop bookkeeping and 3D dummies (all -1/0): unused
============================  ==========  ===============================================

Checked in the writer, not on a released file (none is public): the published format page
(``doc/datasets.md``) calls the toe key ``image/toes_pts`` and the features ``image/phi``;
the writer writes ``image/toe_pts`` and ``image/phis``, which are the names read here.

Joints (convention ``instavariety``): HMMR's 25 = 14 LSP-like [R Heel, R Knee, R Hip, L Hip,
L Knee, L Heel, R Wrist, R Elbow, R Shoulder, L Shoulder, L Elbow, L Wrist, Neck, Head] + face
[Nose, L Eye, R Eye, L Ear, R Ear] + feet [L Big Toe, R Big Toe, L Small Toe, R Small Toe,
L Ankle, R Ankle] (``video_in_the_wild_to_tfrecords.py``, ``joint_names_coco``). They come
from OpenPose tracks: 'Head' is always written as (0, 0, 0) (OpenPose has no head top), and
visibility is ``logits >= 0.1``; so a joint with visibility 0 is *not labelled*: confidence
0 and position (0, 0). Visible joints get confidence 1. OpenPose does not tell occluded from
undetected, so there is no visibility column.

Coordinates: always in the pixels of the embedded crop (``image/encoded``), never of the
frames named by ``image/filenames``. Train records (those with ``image/phis``) went through
HMMR's tube augmentation (``src/util/tube_augmentation.py``): jittered 224 px crop, random
whole-track flip with left/right joints swapped back to anatomical order, then
``u = 2 x / 224 - 1`` and the same for y, times the visibility; we invert it as
``x = (u + 1) / 2 * width`` (height for y) of the crop (224). Test records
(``make_test_tfrecords.py``) keep crop pixels as they are.

Images: the crops exist only inside the tfrecords, and a store's ``image_path`` is relative
to the raw root, so the converter writes each track's JPEG bytes unchanged (no re-encoding)
to ``ROOT/crops/<split>/<tfrecord stem>/<record:05d>/<frame:04d>.jpg``: one folder per track,
written under a temporary name and renamed when complete, rewritten by every run. The raw
root must therefore be writable. ``image_hw`` is read from each JPEG's header and must agree
with ``image/heightwidths``.

Samples: ``sequence`` = ``<tfrecord stem>/<record:05d>`` (one track; train files named
``*_copyMM`` are augmented copies of the same tracks, each converted as its own sequence),
``frame_index`` = frame in the track (0-based; the test ``meta/time_pts`` count from a trimmed
start, so they are not kept), ``person_id`` 0 (one person per track), ``source_key``
``<split>/<file>:<record>:<frame>``, ``extra_original_frame`` the original frame path where
``image/filenames`` lines up with the frames (the train writer stores the whole untrimmed
track's names, so when their count differs from N they cannot be matched: ''). Box: the
visible keypoints' extent x1.2 (:func:`hmr.core.boxes.bbox_from_keypoints`); the files hold
no person box in crop pixels. Frames with fewer than two visible joints (no box, no 2D
signal) are skipped silently.

Public readers' bugs not repeated: VIBE ``lib/data_utils/insta_utils.py`` and hmr-benchmarks
``instavariety.py``/``vlog.py`` call ``np.zeros(n, 3, 6)`` (a TypeError) when ``image/toe_pts``
is missing (here: toes unlabelled); hmr-benchmarks pairs the crop-space keypoints with the
original frame paths from ``image/filenames`` (and index them by frame although the train
list is untrimmed), and writes the RGB crops with ``cv2.imwrite`` (channels swapped).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import to_superset
from converters.options import ConvertOptions
from converters.tfrecord import (
    BYTES_LIST,
    FLOAT_LIST,
    INT64_LIST,
    Feature,
    iter_records,
    parse_example,
)
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.sources import SOURCES, Source
from hmr.core.utils.atomic import atomic_path

SOURCE = SOURCES["instavariety"]
VERSION = "1"

NUM_JOINTS = 25
CROPS = "crops"  # folder under ROOT the decoded crops are written to
JPEG_MAGIC = b"\xff\xd8"


class TrackError(ValueError):
    """A record that is a valid Example but not a valid HMMR track."""


@dataclass
class Track:
    """One decoded HMMR track."""

    jpegs: list[bytes]          # N JPEG crops
    keypoints: np.ndarray       # (N, 25, 3): x, y (raw units), visibility 0/1
    heightwidths: np.ndarray    # (N, 2)
    normalised: bool            # keypoints in [-1, 1] of the crop (train records)
    filenames: list[str]        # original frame paths, aligned with the frames, or []


def _values(features: dict[str, Feature], key: str, kind: str, sizes: tuple[int, ...]):
    """``features[key]`` of ``kind`` with one of the lengths ``sizes`` (0 = may be absent)."""
    feature = features.get(key)
    if feature is None or (feature.kind == "" and 0 in sizes):
        if 0 in sizes:
            return [] if kind == BYTES_LIST else np.zeros(0)
        raise TrackError(f"feature '{key}' is missing")
    if feature.kind != kind:
        raise TrackError(f"feature '{key}' holds {feature.kind or 'no list'}, expected {kind}")
    if len(feature) not in sizes:
        expected = " or ".join(str(s) for s in sizes)
        raise TrackError(f"feature '{key}' has {len(feature)} values, expected {expected}")
    return feature.value


def read_track(features: dict[str, Feature]) -> Track:
    """The frames, keypoints and sizes of one HMMR Example (layouts in the module docstring)."""
    count = _values(features, "meta/N", INT64_LIST, (1,))
    n = int(count[0])
    if n <= 0:
        raise TrackError(f"meta/N is {n}")
    jpegs = _values(features, "image/encoded", BYTES_LIST, (n,))
    for i, jpg in enumerate(jpegs):
        if not jpg.startswith(JPEG_MAGIC):
            raise TrackError(f"image/encoded entry {i} is not a JPEG")
    xys = _values(features, "image/xys", FLOAT_LIST, (2 * 14 * n,)).reshape(n, 2, 14)
    vis = _values(features, "image/visibilities", INT64_LIST, (14 * n,)).reshape(n, 1, 14)
    face = _values(features, "image/face_pts", FLOAT_LIST, (0, 3 * 5 * n))
    toes = _values(features, "image/toe_pts", FLOAT_LIST, (0, 3 * 6 * n))
    face = face.reshape(n, 3, 5) if len(face) else np.zeros((n, 3, 5))  # absent: unlabelled
    toes = toes.reshape(n, 3, 6) if len(toes) else np.zeros((n, 3, 6))
    labels = np.concatenate([np.concatenate([xys, vis], axis=1), face, toes], axis=2)  # (N, 3, 25)
    keypoints = np.transpose(labels, (0, 2, 1)).astype(np.float64)
    keypoints[..., 2] = keypoints[..., 2] > 0
    hw = _values(features, "image/heightwidths", INT64_LIST, (2 * n,)).reshape(n, 2)
    names = features.get("image/filenames")
    aligned = names is not None and names.kind == BYTES_LIST and len(names) == n
    filenames = [b.decode("utf-8", "replace") for b in names.value] if aligned else []
    return Track(list(jpegs), keypoints, hw, "image/phis" in features, filenames)


def crop_pixels(keypoints: np.ndarray, hw: tuple[int, int], normalised: bool) -> np.ndarray:
    """(25, 3) raw keypoints of one frame -> crop pixels; invisible joints -> (0, 0, 0)."""
    out = keypoints.copy()
    if normalised:  # inverse of tube_augmentation's 2 * x / size - 1
        out[:, 0] = (out[:, 0] + 1.0) * 0.5 * hw[1]
        out[:, 1] = (out[:, 1] + 1.0) * 0.5 * hw[0]
    out[out[:, 2] <= 0] = 0.0
    return out


def jpeg_size_hw(data: bytes) -> tuple[int, int]:
    """(height, width) from a JPEG's header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise TrackError(f"unreadable JPEG header: {exc}") from None
    return height, width


def write_crops(folder: Path, jpegs: list[bytes]) -> None:
    """The track's JPEGs as ``folder/<frame:04d>.jpg``, the folder renamed into place when
    complete (a rerun replaces it)."""
    with atomic_path(folder, is_dir=True, overwrite=True) as tmp:
        for i, jpg in enumerate(jpegs):
            (tmp / f"{i:04d}.jpg").write_bytes(jpg)


def split_dir(root: Path, split: str) -> Path:
    folder = Path(root) / split
    if not folder.is_dir():
        nested = [p for p in Path(root).iterdir() if (p / split).is_dir()] if Path(root).is_dir() else []
        hint = f" (found {nested[0] / split}: pass --root {nested[0]})" if nested else ""
        raise DatasetFormatError(f"no '{split}' folder of tfrecords{hint}", path=folder)
    return folder


def hmmr_raw_files(root: Path, split: str) -> list[Path]:
    files = sorted(split_dir(root, split).glob("*.tfrecord"))
    if not files:
        raise DatasetFormatError("no *.tfrecord files", path=Path(root) / split)
    return files


def _frame_samples(track: Track, path: Path, record: int, split: str, image_dir: str
                   ) -> Iterator[dict | BadRecord]:
    for i, jpg in enumerate(track.jpegs):
        key = f"{split}/{path.name}:{record}:{i}"
        try:
            hw = jpeg_size_hw(jpg)
        except TrackError as exc:
            yield BadRecord(str(path), f"{record}:{i}", str(exc))
            continue
        if tuple(track.heightwidths[i]) != hw:
            yield BadRecord(str(path), f"{record}:{i}", f"the JPEG is {hw[0]}x{hw[1]} but "
                            f"image/heightwidths says {track.heightwidths[i][0]}x{track.heightwidths[i][1]}")
            continue
        kps = crop_pixels(track.keypoints[i], hw, track.normalised)  # (25, 3)
        bbox = bbox_from_keypoints(kps)
        if bbox is None:
            continue  # fewer than two visible joints: skipped (module docstring)
        yield {
            "image_path": f"{image_dir}/{i:04d}.jpg",
            "image_hw": np.asarray(hw, dtype=np.int32),
            "bbox_xywh": bbox,
            "keypoints2d": to_superset(kps, "instavariety"),
            "sequence": f"{path.stem}/{record:05d}",
            "frame_index": i,
            "person_id": 0,
            "source_key": key,
            "extra_original_frame": track.filenames[i] if track.filenames else "",
        }


def hmmr_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    """Samples of every track of every tfrecord of ``split``; crops written to ROOT/crops."""
    root = Path(root)
    for path in hmmr_raw_files(root, split):
        for record, data in iter_records(path):
            try:
                track = read_track(parse_example(data, path=path, record=record))
            except (TrackError, DatasetFormatError) as exc:
                yield BadRecord(str(path), record, getattr(exc, "message", str(exc)))
                continue
            image_dir = f"{CROPS}/{split}/{path.stem}/{record:05d}"
            write_crops(root / image_dir, track.jpegs)
            yield from _frame_samples(track, path, record, split, image_dir)


def define(source: Source):
    """``raw_files, iter_samples`` of a converter of HMMR tfrecords (InstaVariety, VLOG)."""
    if source.convention != "instavariety":
        raise HmrError(f"source '{source.name}' must declare the 'instavariety' convention "
                       f"(HMMR's 25 joints) to use the HMMR tfrecord reader")
    return hmmr_raw_files, hmmr_samples


raw_files, iter_samples = define(SOURCE)
