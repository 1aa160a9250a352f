"""Look Into Person (LIP), single-person pose part: train and val (test labels unreleased).

Raw layout (``TrainVal_images.zip`` and ``TrainVal_pose_annotations.zip`` unzipped in
``ROOT``)::

    ROOT/TrainVal_pose_annotations/lip_train_set.csv   lip_val_set.csv
    ROOT/TrainVal_images/train_images/<name>.jpg       val_images/<name>.jpg

Some copies nest the image folders once more (``TrainVal_images/TrainVal_images/
train_images``, the layout Graviti's tensorbay loader expects); that is read too.

CSV (no header; one row per image, each image one person crop named ``ImageID_PersonId.jpg``,
e.g. ``77_471474.jpg``): column 0 the image file name, then 16 x (x, y, v), x = column and
y = row in pixels; a joint the annotators did not place is ``nan,nan,nan`` (an empty field
is read as nan too, as pandas-based readers do). Layout read in
the dataset's ``TrainVal_pose_annotations/README.md`` as quoted by two public readers (the
same wording in both: ``ImageID_PersonId.jpg,x1,y1,v1,...,x16,y16,v16``, "x,y is the
annotation label in (column, row), v stands for visuable") and in the release's
``vis_annotation.py`` (it skips a joint whose v is ``'nan'``; ``int(x)`` parses the
coordinates, so they are written as whole numbers). Rows are read one at a time (csv module).

Joint order (convention ``"lip"``, MPII's 16): R_Ankle, R_Knee, R_Hip, L_Hip, L_Knee,
L_Ankle, B_Pelvis, B_Spine, B_Neck, B_Head, R_Wrist, R_Elbow, R_Shoulder, L_Shoulder,
L_Elbow, L_Wrist (README order; ``vis_annotation.py`` draws limbs 0-1-2, 3-4-5,
6-7-8-9, 10-11-12, 13-14-15, consistent with it). B_Spine is MPII's thorax, B_Neck its
upper neck, B_Head its head top.

Visibility. The meaning of v (0 or 1) is not settled by the publisher's text: Graviti's
tensorbay loader and smplbody/hmr-benchmarks read ``visible = 1 - v`` (v = 0 visible, 1
occluded); another public reader shifts v by +1 into COCO-like codes (v = 1 visible). Both
values are placed joints, so both get confidence 1 at their position; the raw code is kept
in ``extra_visibility`` (16,) int8, -1 for ``nan``. A joint is labelled when x and y are
numbers; a v other than 0, 1 or nan is a bad record. No real LIP row was available to
check these points: they are what the public readers agree on.

Box: LIP has none; the labelled-joint extent enlarged x1.2 (hmr.core.boxes, SPIN's rule).
Rows with fewer than ``min_keypoints`` labelled joints (default 2, the fewest that make a
box) are dropped, not reported. ``image_hw`` is read from each image's header (so images are
required even with ``--no-check-images``). ``person_id`` is 0; ``source_key`` is
``<csv name>:<line>`` (1-based). Coordinates are used as written (no clipping: some fall
outside their image, per a public reader's note).

Public readers' mistakes avoided: hmr-benchmarks ``lip.py`` fills ``nan`` with 1, so a
missing joint becomes a joint at (1, 1), and drops every v = 1 joint.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import with_image_sizes
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import require_file
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["lip"]
VERSION = "1"

OPTIONS = (
    Option("min_keypoints", 2, int, "drop rows with fewer labelled joints (2 make a box)"),
)

NUM_JOINTS = 16
NO_CODE = -1  # extra_visibility of a joint whose v is nan


def csv_path(root: Path, split: str) -> Path:
    return Path(root) / "TrainVal_pose_annotations" / f"lip_{split}_set.csv"


def image_folder(root: Path, split: str) -> str:
    """The split's image folder relative to ``root`` (single or doubly nested unzip)."""
    for rel in (f"TrainVal_images/{split}_images", f"TrainVal_images/TrainVal_images/{split}_images"):
        if (Path(root) / rel).is_dir():
            return rel
    raise DatasetFormatError(f"no image folder TrainVal_images/{split}_images "
                             f"(nor TrainVal_images/TrainVal_images/{split}_images)", path=root)


def raw_files(root: Path, split: str) -> list[Path]:
    path = csv_path(root, split)
    return [path] if path.is_file() else []


def parse_row(row: list[str]) -> tuple[str, np.ndarray] | str:
    """(image name, (16, 3) x, y, v with NaN where missing) from one CSV row, or why not."""
    if len(row) != 1 + NUM_JOINTS * 3:
        return f"{len(row)} columns, expected {1 + NUM_JOINTS * 3} (name, 16 x [x, y, v])"
    name = row[0].strip()
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        return f"image name {name!r} is not a file name"
    try:
        values = np.array([float(v) if v.strip() else np.nan for v in row[1:]], dtype=np.float64)
    except ValueError as exc:
        return f"not a number: {exc}"
    raw = values.reshape(NUM_JOINTS, 3)
    if np.isinf(raw).any():
        return "infinite coordinate or code"
    codes = raw[:, 2]
    odd = ~(np.isnan(codes) | np.isin(codes, (0.0, 1.0)))
    if odd.any():
        j = int(np.argmax(odd))
        return f"visibility {codes[j]:g} at joint {j} is not 0, 1 or nan"
    return name, raw


def row_sample(raw: np.ndarray) -> dict:
    """Keypoints (superset), box and raw codes from a parsed (16, 3) row."""
    labelled = np.isfinite(raw[:, 0]) & np.isfinite(raw[:, 1])
    native = np.zeros((NUM_JOINTS, 3))
    native[labelled, :2] = raw[labelled, :2]
    native[labelled, 2] = 1.0
    codes = np.where(np.isnan(raw[:, 2]), NO_CODE, raw[:, 2]).astype(np.int8)
    return {"keypoints2d": to_superset(native, "lip"), "bbox_xywh": bbox_from_keypoints(native),
            "extra_visibility": codes, "_labelled": int(labelled.sum())}


def _rows(path: Path, folder: str, min_keypoints: int) -> Iterator[dict | BadRecord]:
    with open(path, newline="", encoding="utf-8") as fh:
        try:
            for line, row in enumerate(csv.reader(fh), start=1):
                key = f"{path.name}:{line}"
                if not row:
                    continue
                parsed = parse_row(row)
                if isinstance(parsed, str):
                    yield BadRecord(str(path), key, parsed)
                    continue
                name, raw = parsed
                sample = row_sample(raw)
                if sample.pop("_labelled") < min_keypoints:
                    continue
                if sample["bbox_xywh"] is None:
                    yield BadRecord(str(path), key, "fewer than two labelled joints: no box")
                    continue
                sample.update(image_path=f"{folder}/{name}", person_id=0, source_key=key)
                yield sample
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DatasetFormatError(f"unreadable CSV: {exc}", path=path) from None


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    path = require_file(csv_path(root, split))
    folder = image_folder(root, split)
    rows = _rows(path, folder, get_option(options, OPTIONS, "min_keypoints"))
    # the CSV has no image sizes: every image header is read (so images are required)
    yield from with_image_sizes(rows, root, workers=options.workers)
