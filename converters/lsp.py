"""Leeds Sports Pose (LSP): 2,000 images, 14 joints, one person per image.

Raw layout (either archive from sam.johnson.io/research/lsp.html, unzipped into ``ROOT``)::

    ROOT/joints.mat          # MATLAB v5, variable 'joints', shape (3, 14, 2000) float64
    ROOT/images/im0001.jpg … im2000.jpg

``lsp_dataset.zip`` has images scaled so the person is ~150 px tall;
``lsp_dataset_original.zip`` has the original-size images. Both have the same
``joints.mat`` layout, each in the pixels of its own images: convert whichever you have
(SPIN trains on the original-size train half and tests on the scaled test half).

``joints[:, j, i]`` = (x, y, flag) of joint ``j`` in image ``i + 1``. The flag is an
*occlusion* flag (1 = occluded): every LSP joint is labelled, so all 14 joints get
confidence 1 (as SPIN / MMHuman3D do); the flag is kept as ``extra_occluded`` (14,).

Joint order (convention ``"lsp"``): right ankle, right knee, right hip, left hip, left
knee, left ankle, right wrist, right elbow, right shoulder, left shoulder, left elbow,
left wrist, neck, head top.

Splits: ``train`` = images 1-1000, ``test`` = images 1001-2000 (the publisher's protocol:
first half train, second half test). Box: labelled-keypoint extent enlarged x1.2 (SPIN's
rule). Coordinates are used as written (no 1-based shift: the publisher documents none).
``image_hw`` is read from each image's header (the .mat has no sizes), on ``--workers``
processes, so the images must be present even with ``--no-check-images``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import attach_image_sizes
from converters.labels import to_superset
from converters.options import ConvertOptions
from converters.readers import read_mat
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["lsp"]
VERSION = "1"

NUM_JOINTS = 14


def raw_files(root: Path, split: str) -> list[Path]:
    path = Path(root) / "joints.mat"
    return [path] if path.is_file() else []


def read_joints(path: Path, layout: str) -> np.ndarray:
    """``joints`` from a Leeds ``joints.mat`` as (N, 14, 3).

    layout ``"3xJxN"`` (LSP) or ``"Jx3xN"`` (LSP-Extended); the other orientation is an
    error naming the file, since the two look alike when transposed by mistake.
    """
    mat = read_mat(path)
    if "joints" not in mat:
        raise DatasetFormatError("no variable 'joints' in the .mat file", path=path)
    try:
        joints = np.asarray(mat["joints"], dtype=np.float64)
    except (TypeError, ValueError) as exc:  # a cell array, text, ...
        raise DatasetFormatError(f"'joints' is not a numeric array ({exc})", path=path, record="joints") from None
    expected = (3, NUM_JOINTS) if layout == "3xJxN" else (NUM_JOINTS, 3)
    if joints.ndim != 3 or joints.shape[:2] != expected:
        raise DatasetFormatError(
            f"'joints' has shape {joints.shape}; expected ({expected[0]}, {expected[1]}, N) "
            f"for this dataset (LSP is (3, 14, N), LSP-Extended is (14, 3, N))", path=path)
    if layout == "3xJxN":
        return joints.transpose(2, 1, 0)  # (N, 14, 3)
    return joints.transpose(2, 0, 1)  # (N, 14, 3)


def leeds_samples(root: Path, rows: list[tuple[int, str, np.ndarray]], convention: str,
                  options: ConvertOptions, mat: Path, extra: dict[str, np.ndarray]
                  ) -> Iterator[dict | BadRecord]:
    """Samples from (index, relative image path, (14, 3) keypoints) rows, image headers read
    in parallel. ``extra`` maps column name -> (N, ...) array indexed like the .mat."""
    # joints.mat has no image sizes: every image header is read (so images are required)
    pairs = attach_image_sizes(rows, lambda row: str(root / row[1]), workers=options.workers)
    for (index, rel, kps), size in pairs:
        record = f"{mat.name}[{index}]"
        if isinstance(size, str):
            yield BadRecord(str(root / rel), record, size)
            continue
        if not np.isfinite(kps).all():
            yield BadRecord(str(mat), record, "joint coordinates contain NaN or inf")
            continue
        bbox = bbox_from_keypoints(kps)
        if bbox is None:
            yield BadRecord(str(mat), record, "fewer than two labelled joints: no box")
            continue
        sample = {
            "image_path": rel,
            "image_hw": np.asarray(size, dtype=np.int32),
            "bbox_xywh": bbox,
            "keypoints2d": to_superset(kps, convention),
            "person_id": 0,
            "source_key": record,
        }
        for name, values in extra.items():
            sample[name] = values[index]
        yield sample


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    joints = read_joints(root / "joints.mat", "3xJxN")  # (N, 14, 3)
    n = len(joints)
    indices = range(0, n // 2) if split == "train" else range(n // 2, n)
    occluded = (joints[:, :, 2] > 0.5).astype(np.uint8)  # (N, 14)
    rows = []
    for i in indices:
        kps = joints[i].copy()
        kps[:, 2] = 1.0  # every LSP joint is labelled; the flag means "occluded"
        rows.append((i, f"images/im{i + 1:04d}.jpg", kps))
    yield from leeds_samples(root, rows, "lsp", options, root / "joints.mat", {"extra_occluded": occluded})
