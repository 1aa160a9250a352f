"""MuPoTS-3D (the multi-person 3-D test set of the MPI-INF-3DHP authors) -> schema v1.

A test set: its only split is ``test``.

Raw layout (``MultiPersonTestSet.zip`` from the SingleShotMultiPerson project page;
root = the folder holding ``MultiPersonTestSet/``, or that folder itself)::

    MultiPersonTestSet/TS{1..20}/img_{i:06d}.jpg   frame i, 0-based
    MultiPersonTestSet/TS{1..20}/annot.mat         MATLAB v5
    MultiPersonTestSet/TS{1..20}/occlusion.mat     MATLAB v5

Keys read (the publisher's evaluation code, ``mpii_mupots_multiperson_eval.m`` as shipped in
mupots-3d-eval and copied in github.com/mks0601/3DMPPE_POSENET_RELEASE
``data/MuPoTS/``; the same reading in hmr-benchmarks ``mupots3d.py``; no real file was
available to check):

- ``annot.mat['annotations']``: a cell array (frames x persons); each cell a 1 x 1 struct
  with ``annot2`` (2, 17) px, ``annot3`` (3, 17) **mm, camera frame**, ``univ_annot3``
  (3, 17) mm (the skeleton rescaled to a universal height: what the official 3DPCK scores)
  and ``isValidFrame`` (1 x 1); an empty cell counts as an invalid one. The evaluation counts and scores only cells with
  ``isValidFrame`` true; so do we (``-o valid_only=false`` keeps the others, flagged in
  ``extra_valid_frame``).
- ``occlusion.mat['occlusion_labels']``: the same cell shape, each cell (1, 17) logical,
  1 = occluded (the evaluation's visibility mask is ``1 - occlusion_labels``) ->
  ``extra_occluded`` (17,) uint8.
- Image size per sequence, from the publisher's ``mpii_get_multiperson_test_seq_info.m``:
  TS1-TS5 2048 x 2048 (studio), TS6-TS20 1080 x 1920 (H x W, outdoor); with
  ``--check-images`` the frame headers are read instead.

Joint order: ``mupots_3d`` (17) = the MPI-INF-3DHP "relevant" joints: head_top, neck,
R shoulder/elbow/wrist, L shoulder/elbow/wrist, R hip/knee/ankle, L hip/knee/ankle, pelvis
(index 14: the evaluation centres poses on its 15th, 1-based, joint), spine, head;
3DMPPE names them Head_top, Thorax, ..., Pelvis, Spine, Head. (posepile names index 14
'spin' and 16 'pelv'; the publisher's root index says pelvis is 14.)

Intrinsics: the release has none (3DMPPE's ``MuPoTS-3D.json`` adds per-image ``intrinsic``
values of its own). We fit fx, fy, cx, cy per sequence by least squares on ``u z = fx x +
cx z`` over the valid persons' joints, leaving out the hips and the spine, which a public
reader reports do not project consistently (unverified here). ``extra_reprojection_px``
(17,) holds each joint's distance between ``annot2`` and the projection of ``annot3`` with
the fitted camera, so a user can see where the source disagrees with itself. A fit whose
focal length is not positive or whose principal point lies outside the image is an error.

What is written: one sample per valid (frame, person); keypoints2d ``annot2``, keypoints3d
``annot3`` / 1000 (metres, camera frame, not root-centred), confidence 1 for all 17 joints
(occluded joints are annotated); ``extra_univ_keypoints3d`` ``univ_annot3`` / 1000 in the
raw 17-joint order; with ``-o valid_only=false`` invalid cells that hold a pose (all depths
> 0) are kept too, the empty ones never; bbox = the 2-D joints' box enlarged 1.2x; no SMPL. ``sequence`` and
``subject_id`` ``TS<n>``, ``frame_index`` the 0-based frame, ``person_id`` the cell column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import ImageProber
from converters.labels import intrinsics_matrix, to_superset
from converters.mpi_inf_3dhp import fit_intrinsics
from converters.options import ConvertOptions, Option, get_option
from converters.readers import read_mat
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.geometry import project_points
from hmr.core.sources import SOURCES

SOURCE = SOURCES["mupots3d"]
VERSION = "1"

NUM_JOINTS = 17
SEQUENCES = tuple(f"TS{i}" for i in range(1, 21))
# R_Hip, L_Hip, Spine: left out of the intrinsics fit (see the module docstring).
FIT_EXCLUDED = (8, 11, 15)

OPTIONS = (
    Option("sequences", ",".join(SEQUENCES), str, "comma-separated sequences TS1..TS20"),
    Option("valid_only", True, bool, "only the persons the evaluation marks valid (isValidFrame)"),
)


def image_hw(sequence: str) -> tuple[int, int]:
    """(height, width) of a sequence's frames (mpii_get_multiperson_test_seq_info.m)."""
    return (2048, 2048) if int(sequence[2:]) <= 5 else (1080, 1920)


def sequence_dir(root: Path, name: str) -> Path:
    for cand in (root / "MultiPersonTestSet" / name, root / name):
        if cand.is_dir():
            return cand
    raise DatasetFormatError("sequence folder is missing", path=root / "MultiPersonTestSet" / name)


def _field(cell: object, name: str) -> np.ndarray:
    """A field of one cell's 1 x 1 struct (scipy structured array or mat_struct)."""
    value = cell
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.names:
        return np.asarray(value.reshape(-1)[0][name])
    return np.asarray(getattr(value, name))


def read_annotations(path: Path) -> dict[str, np.ndarray]:
    """annot.mat -> annot2 (F, P, 17, 2) px, annot3 / univ3 (F, P, 17, 3) m, valid (F, P)."""
    cells = read_mat(path).get("annotations")
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.ndim != 2:
        raise DatasetFormatError("no 'annotations' cell array (frames x persons)", path=path)
    frames, persons = cells.shape
    out = {"annot2": np.zeros((frames, persons, NUM_JOINTS, 2)),
           "annot3": np.zeros((frames, persons, NUM_JOINTS, 3)),
           "univ3": np.zeros((frames, persons, NUM_JOINTS, 3)),
           "valid": np.zeros((frames, persons), bool)}
    for f in range(frames):
        for p in range(persons):
            cell = cells[f, p]
            if isinstance(cell, np.ndarray) and cell.size == 0:
                continue  # an empty cell: no person there (left invalid)
            try:
                out["annot2"][f, p] = _field(cell, "annot2").astype(np.float64).reshape(2, NUM_JOINTS).T
                out["annot3"][f, p] = _field(cell, "annot3").astype(np.float64).reshape(3, NUM_JOINTS).T / 1000.0
                out["univ3"][f, p] = _field(cell, "univ_annot3").astype(np.float64).reshape(3, NUM_JOINTS).T / 1000.0
                out["valid"][f, p] = bool(_field(cell, "isValidFrame").reshape(-1)[0])
            except (KeyError, AttributeError, ValueError, IndexError, TypeError) as exc:
                raise DatasetFormatError(f"cell is not a struct with annot2 (2, 17), annot3 / univ_annot3 "
                                         f"(3, 17) and isValidFrame ({exc})", path=path,
                                         record=f"annotations{{{f + 1},{p + 1}}}") from None
    return out


def read_occlusion(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """occlusion.mat -> (F, P, 17) bool, 1 = occluded."""
    cells = read_mat(path).get("occlusion_labels")
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.shape != shape:
        raise DatasetFormatError(f"no 'occlusion_labels' cell array of shape {shape} (as annot.mat)", path=path)
    out = np.zeros((*shape, NUM_JOINTS), bool)
    for f in range(shape[0]):
        for p in range(shape[1]):
            labels = np.asarray(cells[f, p])
            if labels.size != NUM_JOINTS:
                raise DatasetFormatError(f"occlusion labels hold {labels.size} values, expected 17",
                                         path=path, record=f"occlusion_labels{{{f + 1},{p + 1}}}")
            out[f, p] = labels.reshape(NUM_JOINTS) != 0
    return out


def fit_camera(ann: dict[str, np.ndarray], hw: tuple[int, int], path: Path) -> np.ndarray:
    """Pinhole K (3, 3) fitted to a sequence's valid annotations."""
    keep = [j for j in range(NUM_JOINTS) if j not in FIT_EXCLUDED]
    sel = ann["valid"] & (ann["annot3"][..., 2] > 0).all(axis=-1)
    j2d = ann["annot2"][sel][:, keep].reshape(-1, 2)
    j3d = ann["annot3"][sel][:, keep].reshape(-1, 3)
    fit = fit_intrinsics(j2d, j3d) if np.isfinite(j2d).all() and np.isfinite(j3d).all() else None
    if fit is None:
        raise DatasetFormatError("cannot fit the camera: no valid person in front of the camera", path=path)
    fx, fy, cx, cy = fit
    h, w = hw
    if fx <= 0 or fy <= 0 or not (0 <= cx <= w and 0 <= cy <= h):
        raise DatasetFormatError(f"fitted camera fx={fx:.1f} fy={fy:.1f} cx={cx:.1f} cy={cy:.1f} is not "
                                 f"a camera of a {w} x {h} image: annot2 and annot3 disagree", path=path)
    return intrinsics_matrix(fx, fy, cx, cy)


def _sequence_samples(root: Path, name: str, valid_only: bool, probe: Callable,
                      options: ConvertOptions) -> Iterator[dict | BadRecord]:
    seq_dir = sequence_dir(root, name)
    annot_path = seq_dir / "annot.mat"
    ann = read_annotations(annot_path)
    occluded = read_occlusion(seq_dir / "occlusion.mat", ann["valid"].shape)
    nominal_hw = image_hw(name)
    k = fit_camera(ann, nominal_hw, annot_path)
    # Invalid cells hold no pose in front of the camera in the release's unannotated slots:
    # with valid_only=false the others are kept, those never.
    posed = (ann["annot3"][..., 2] > 0).all(axis=-1)
    pairs = [(f, p) for f, p in np.ndindex(*ann["valid"].shape)
             if ann["valid"][f, p] or (not valid_only and posed[f, p])]
    frames = sorted({f for f, _ in pairs})
    paths = {f: seq_dir / f"img_{f:06d}.jpg" for f in frames}
    sizes = dict(zip(frames, probe([paths[f] for f in frames]) if options.check_images
                     else [nominal_hw] * len(frames)))
    ones = np.ones((NUM_JOINTS, 1))
    for f, p in pairs:
        key = f"{name}/annot.mat:frame {f}:person {p}"
        if isinstance(sizes[f], str):
            yield BadRecord(str(paths[f]), key, sizes[f])
            continue
        j2d, j3d = ann["annot2"][f, p], ann["annot3"][f, p]
        if not (np.isfinite(j2d).all() and np.isfinite(j3d).all() and np.isfinite(ann["univ3"][f, p]).all()):
            yield BadRecord(str(annot_path), key, "NaN or inf in annot2 / annot3 / univ_annot3")
            continue
        if not posed[f, p]:
            yield BadRecord(str(annot_path), key, "a valid person has a joint at depth <= 0")
            continue
        kp2d = to_superset(np.concatenate([j2d, ones], 1), "mupots_3d")
        reproj = np.linalg.norm(project_points(j3d, k.astype(np.float64)) - j2d, axis=-1)
        yield {"keypoints2d": kp2d,
               "keypoints3d": to_superset(np.concatenate([j3d, ones], 1), "mupots_3d"),
               "bbox_xywh": bbox_from_keypoints(kp2d, scale=1.2),
               "image_path": str(paths[f].relative_to(root)), "image_hw": np.array(sizes[f], np.int32),
               "has_intrinsics": True, "cam_intrinsics": k,
               "subject_id": name, "sequence": name, "frame_index": int(f), "person_id": int(p),
               "source_key": key, "extra_valid_frame": np.uint8(ann["valid"][f, p]),
               "extra_occluded": occluded[f, p].astype(np.uint8),
               "extra_univ_keypoints3d": ann["univ3"][f, p].astype(np.float32),
               "extra_reprojection_px": reproj.astype(np.float32)}


def _sequences(options: ConvertOptions) -> list[str]:
    names = [s.strip() for s in get_option(options, OPTIONS, "sequences").split(",") if s.strip()]
    unknown = [n for n in names if n not in SEQUENCES]
    if unknown or not names:
        raise HmrError(f"option sequences: expected names among TS1..TS20, got {names}")
    return names


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    if split not in SOURCE.splits:
        raise HmrError(f"mupots3d has splits {SOURCE.splits}, not '{split}' (it is a test set)")
    names = _sequences(options)
    valid_only = get_option(options, OPTIONS, "valid_only")
    with ImageProber(options.workers if options.check_images else 1) as probe:
        for name in names:
            yield from _sequence_samples(root, name, valid_only, probe, options)


def raw_files(root: Path, split: str) -> list[Path]:
    out = []
    for name in SEQUENCES:
        for base in (root / "MultiPersonTestSet" / name, root / name):
            files = [base / "annot.mat", base / "occlusion.mat"]
            if files[0].is_file():
                out += [p for p in files if p.is_file()]
                break
    return out
