"""MPII Human Pose: 16 joints per person, three annotation flavours of the same labels.

Raw layout under ``ROOT`` (images from ``mpii_human_pose_v1.tar.gz``)::

    ROOT/images/*.jpg
    ROOT/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat   # flavour "mat" (official)
    ROOT/annot/train.h5, ROOT/annot/valid.h5                      # flavour "h5" (hourglass;
                                                                  #  or at ROOT, MMHuman3D's layout)
    ROOT/annotations/mpii_train.json, mpii_val.json               # flavour "json" (MMPose)

``-o flavour=mat|h5|json`` picks one; by default the first present of h5, mat, json is used.

Flavour "mat" — the publisher's release (MATLAB v5, read with scipy): ``RELEASE`` with
``annolist(i).image.name``, ``annolist(i).annorect(j)`` holding the head box ``x1, y1,
x2, y2``, ``scale`` (person height / 200 px), ``objpos.x/.y`` (rough person centre) and
``annopoints.point(k)`` with ``id`` (0-15), ``x``, ``y``, ``is_visible`` (0/1, '0'/'1' or
empty); ``img_train(i)`` (1 = training image; test images carry no joints, so only
``train`` is converted); ``single_person{i}`` (rect ids of separated persons).
Every rect with joints becomes a sample; absent joints get confidence 0.

Flavour "h5" — the files of princeton-vl/pose-hg-train that SPIN and MMHuman3D read
(not on the MPII site): datasets ``center`` (N, 2), ``scale`` (N,), ``part`` (N, 16, 2),
``visible`` (N, 16), ``normalize`` (N,) (the PCKh head size), ``imgname`` (N,) bytes,
``index`` (N,) image index, ``person`` (N,) rect index. Splits ``train`` (22,246 persons)
and ``valid`` (2,958). A joint at (0, 0) is unlabelled.

Flavour "json" — MMPose's export (a list of ``{image, joints (16, 2), joints_vis (16,),
center, scale}``), e.g. ``-o json=test_mpii.json -o images=.`` for a loose file.

Conventions applied (all flavours)
----------------------------------
- Joint order (convention ``"mpii"``): r ankle, r knee, r hip, l hip, l knee, l ankle,
  pelvis, thorax, upper neck, head top, r wrist, r elbow, r shoulder, l shoulder,
  l elbow, l wrist. Labelled joints get confidence 1 (occluded ones too; the visibility
  bit is kept as ``extra_visible``).
- MPII coordinates are MATLAB 1-based (MMPose subtracts 1 when loading them); we subtract
  1 from joints and centre so pixel centres sit at integer coordinates from 0
  (``-o one_based=0`` keeps them as written).
- Box: square of side ``scale * 200`` px at ``objpos``/``center`` (SPIN/MMHuman3D);
  ``-o bbox=keypoints`` uses the labelled-joint extent x1.2 instead.
- ``extra_head_size_px``: the PCKh normaliser, ``0.6 * |(x2, y2) - (x1, y1)|`` of the head
  box (mat) or ``normalize`` (h5); absent from the json flavour.
- ``image_hw`` is read from the image headers (no flavour stores sizes): images required.
- Filtering: persons with fewer than ``min_keypoints`` labelled joints (default 1) are
  dropped; ``-o preset=spin`` keeps only persons with all 16 joints (SPIN's rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.images import attach_image_sizes
from converters.labels import to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.readers import open_h5, read_json, read_mat
from hmr.core.boxes import bbox_from_center_scale, bbox_from_keypoints
from hmr.core.errors import DatasetFormatError, HmrError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["mpii"]
VERSION = "1"

OPTIONS = (
    Option("flavour", "auto", str, "annotation flavour; auto: the first present of h5, mat, json",
           choices=("auto", "mat", "h5", "json")),
    Option("json", None, str, "an MMPose-style JSON file (relative to ROOT or absolute); default "
           "annotations/mpii_{train,val}.json"),
    Option("images", "images", str, "the image folder, relative to ROOT"),
    Option("one_based", True, bool, "shift MPII's 1-based coordinates to 0-based (0: keep as written)"),
    Option("bbox", "center_scale", str, "box: SPIN's centre/scale square, or the labelled-joint extent x1.2",
           choices=("center_scale", "keypoints")),
    Option("min_keypoints", None, int, "drop persons with fewer labelled joints; default 1, 16 with "
           "preset=spin"),
    Option("preset", "", str, "'spin': SPIN's selection (all 16 joints labelled)", choices=("", "spin")),
)

NUM_JOINTS = 16
MAT_PATH = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"
JSON_NAMES = {"train": "annotations/mpii_train.json", "valid": "annotations/mpii_val.json"}
HEAD_SIZE_FACTOR = 0.6  # MPII's PCKh: 0.6 x head-box diagonal


@dataclass
class MpiiPerson:
    """One annotated person, in the file's own (1-based) coordinates."""

    image: str  # relative to the image folder
    joints: np.ndarray  # (16, 3) x, y, labelled
    visible: np.ndarray  # (16,) uint8
    center: np.ndarray  # (2,)
    scale: float
    head_size: float | None
    record: str
    person: int
    source: str = ""  # the annotation file


# --------------------------------------------------------------------------- flavours
def choose_flavour(root: Path, split: str, options: ConvertOptions) -> str:
    flavour = get_option(options, OPTIONS, "flavour")
    if flavour != "auto":
        return flavour
    if "json" in options.extra:
        return "json"
    if (root / "annot" / f"{split}.h5").is_file() or (root / f"{split}.h5").is_file():
        return "h5"
    if (root / MAT_PATH).is_file() and split == "train":
        return "mat"
    if (root / JSON_NAMES[split]).is_file():
        return "json"
    raise DatasetFormatError(f"no MPII annotation for split '{split}': expected annot/{split}.h5, "
                             f"{MAT_PATH} (train) or {JSON_NAMES[split]}", path=root)


def raw_files(root: Path, split: str) -> list[Path]:
    """The annotation file the default flavour choice reads (``-o json=`` files are not
    listed: the contract's raw_files has no options)."""
    root = Path(root)
    for path in (root / "annot" / f"{split}.h5", root / f"{split}.h5", root / MAT_PATH,
                 root / JSON_NAMES[split]):
        if path.is_file():
            return [path]
    return []


def _field(struct, name: str, default=None):
    value = getattr(struct, name, default)
    if isinstance(value, np.ndarray) and value.size == 0:
        return default
    return value


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _flag(value) -> int:
    """is_visible comes as 0/1, '0'/'1', or an empty array (unknown -> 0)."""
    value = _as_list(value)
    if not value:
        return 0
    try:
        return int(float(value[0]))
    except (TypeError, ValueError):
        return 0


def _read_release(path: Path):
    mat = read_mat(path, struct_as_record=False, squeeze_me=True)
    if "RELEASE" not in mat:
        raise DatasetFormatError("no 'RELEASE' struct in the .mat file", path=path)
    return mat["RELEASE"]


def _rect_person(rect, image: str, record: str, person: int) -> MpiiPerson | None:
    points = _as_list(_field(_field(rect, "annopoints"), "point"))
    if not points:
        return None
    joints = np.zeros((NUM_JOINTS, 3))
    visible = np.zeros(NUM_JOINTS, dtype=np.uint8)
    for p in points:
        jid = int(_field(p, "id", -1))
        if not 0 <= jid < NUM_JOINTS:
            raise ValueError(f"joint id {jid} outside 0..15")
        joints[jid] = (float(_field(p, "x")), float(_field(p, "y")), 1.0)
        visible[jid] = _flag(_field(p, "is_visible"))
    objpos = _field(rect, "objpos")
    center = np.array([float(_field(objpos, "x", np.nan)), float(_field(objpos, "y", np.nan))]) \
        if objpos is not None else np.full(2, np.nan)
    head = [_field(rect, k) for k in ("x1", "y1", "x2", "y2")]
    head_size = None
    if all(v is not None for v in head):
        x1, y1, x2, y2 = (float(v) for v in head)
        head_size = HEAD_SIZE_FACTOR * float(np.hypot(x2 - x1, y2 - y1))
    scale = _field(rect, "scale")
    return MpiiPerson(image, joints, visible, center, float(scale) if scale is not None else np.nan,
                      head_size, record, person)


def persons_from_mat(path: Path) -> Iterator[MpiiPerson | BadRecord]:
    release = _read_release(path)
    annolist = _as_list(_field(release, "annolist"))
    img_train = np.asarray(_field(release, "img_train", np.zeros(0))).ravel()
    if len(img_train) != len(annolist):
        raise DatasetFormatError(f"img_train has {len(img_train)} entries, annolist {len(annolist)}",
                                 path=path)
    for i, (entry, is_train) in enumerate(zip(annolist, img_train)):
        if not is_train:
            continue
        image = str(_field(_field(entry, "image"), "name", ""))
        for j, rect in enumerate(_as_list(_field(entry, "annorect"))):
            record = f"RELEASE.annolist({i + 1}).annorect({j + 1})"
            try:
                person = _rect_person(rect, image, record, j)
            except (TypeError, ValueError) as exc:
                yield BadRecord(str(path), record, f"malformed annotation: {exc}")
                continue
            if person is not None:
                person.source = str(path)
                yield person


def _decode(name) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8").rstrip("\x00")
    if isinstance(name, np.ndarray):  # char codes, one row per name
        return bytes(name.astype(np.uint8).tolist()).decode("utf-8").rstrip("\x00")
    return str(name)


#: per-person dataset -> values per person (None: any; ``imgname`` is bytes or char codes)
H5_ROW_SIZES = {"center": 2, "scale": 1, "part": NUM_JOINTS * 2, "visible": NUM_JOINTS,
                "normalize": 1, "person": 1, "imgname": None}


def _check_h5_shapes(f, n: int, path: Path) -> None:
    """Every per-person dataset has ``n`` rows (as ``imgname``) of the expected shape: unequal
    lengths would pair one person's joints with another's image."""
    for key, size in H5_ROW_SIZES.items():
        if key not in f:
            continue
        shape = f[key].shape
        if not shape or shape[0] != n:
            raise DatasetFormatError(f"dataset '{key}' has {shape[0] if shape else 0} rows, 'imgname' {n}: "
                                     "the per-person arrays must have equal lengths", path=path, record=key)
        if size is not None and int(np.prod(shape[1:])) != size:
            raise DatasetFormatError(f"dataset '{key}' has rows of shape {shape[1:]}, expected {size} "
                                     "value(s) per person", path=path, record=key)


#: what h5py raises on a corrupt file part-way (its low-level layer has no one error type)
H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, AttributeError)


def persons_from_h5(path: Path, block: int = 4096) -> Iterator[MpiiPerson | BadRecord]:
    with open_h5(path) as f:
        try:
            missing = [k for k in ("center", "scale", "part", "imgname") if k not in f]
            if missing:
                raise DatasetFormatError(f"missing datasets {missing}", path=path)
            n = len(f["imgname"])
            has = {k: k in f for k in ("visible", "normalize", "person")}
            _check_h5_shapes(f, n, path)
        except H5_ERRORS as exc:
            raise DatasetFormatError(f"corrupt HDF5 file ({type(exc).__name__}: {exc})", path=path) from None
        for start in range(0, n, block):  # block reads: memory independent of N
            stop = min(start + block, n)
            try:
                center, scale = f["center"][start:stop], f["scale"][start:stop]
                part, names = f["part"][start:stop], f["imgname"][start:stop]
                visible = f["visible"][start:stop] if has["visible"] else np.ones((stop - start, 16))
                norm = f["normalize"][start:stop] if has["normalize"] else None
                person = f["person"][start:stop] if has["person"] else np.full(stop - start, -1)
            except H5_ERRORS as exc:
                raise DatasetFormatError(f"corrupt HDF5 file, rows {start}-{stop - 1} ({type(exc).__name__}: "
                                         f"{exc})", path=path) from None
            for k in range(stop - start):
                record = f"{path.name}[{start + k}]"
                try:
                    xy = np.asarray(part[k], dtype=np.float64).reshape(NUM_JOINTS, 2)
                    labelled = ((xy != 0).any(axis=1)).astype(np.float64)
                    found = MpiiPerson(_decode(names[k]), np.concatenate([xy, labelled[:, None]], axis=1),
                                       np.asarray(visible[k]).astype(np.uint8).reshape(NUM_JOINTS),
                                       np.asarray(center[k], dtype=np.float64), float(scale[k]),
                                       None if norm is None else float(norm[k]), record, int(person[k]), str(path))
                except (ValueError, TypeError) as exc:  # e.g. an image name that is not UTF-8
                    found = BadRecord(str(path), record, f"malformed row: {exc}")
                yield found


def persons_from_json(path: Path) -> Iterator[MpiiPerson | BadRecord]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DatasetFormatError("expected a JSON list of MPII records", path=path)
    for i, rec in enumerate(data):
        try:
            xy = np.asarray(rec["joints"], dtype=np.float64).reshape(NUM_JOINTS, 2)
            vis = np.asarray(rec["joints_vis"], dtype=np.float64).reshape(NUM_JOINTS)
            joints = np.concatenate([xy, (vis > 0)[:, None].astype(np.float64)], axis=1)
            yield MpiiPerson(str(rec["image"]), joints, (vis > 0).astype(np.uint8),
                             np.asarray(rec["center"], dtype=np.float64).reshape(2),
                             float(rec["scale"]), None, f"{path.name}[{i}]", -1, str(path))
        except (KeyError, TypeError, ValueError) as exc:
            yield BadRecord(str(path), i, f"malformed MPII record: {exc!r}")


# --------------------------------------------------------------------------- samples
def _person_sample(p: MpiiPerson, image_dir: str, size: tuple[int, int] | None, shift: float,
                   bbox_mode: str, with_head: bool) -> dict | BadRecord:
    joints = p.joints.copy()
    labelled = joints[:, 2] > 0
    joints[labelled, :2] -= shift
    joints[~labelled, :2] = 0.0
    if not np.isfinite(joints).all():
        return BadRecord(p.source, p.record, "joint coordinates contain NaN or inf")
    if bbox_mode == "keypoints" or not (np.isfinite(p.center).all() and np.isfinite(p.scale)
                                        and p.scale > 0):
        bbox = bbox_from_keypoints(joints)
    else:
        bbox = bbox_from_center_scale(p.center - shift, p.scale)
    if bbox is None:
        return BadRecord(p.source, p.record, "no usable person box (no scale/objpos, < 2 joints)")
    sample = {
        "image_path": f"{image_dir}/{p.image}" if image_dir not in ("", ".") else p.image,
        "image_hw": np.asarray(size, dtype=np.int32),
        "bbox_xywh": bbox,
        "keypoints2d": to_superset(joints, "mpii"),
        "person_id": p.person,
        "source_key": p.record,
        "extra_visible": p.visible,
    }
    if with_head:
        sample["extra_head_size_px"] = np.float32(p.head_size or 0.0)
    return sample


def _persons(root: Path, split: str, flavour: str, options: ConvertOptions
             ) -> Iterator[MpiiPerson | BadRecord]:
    if flavour == "h5":
        path = root / "annot" / f"{split}.h5"
        return persons_from_h5(path if path.is_file() or not (root / f"{split}.h5").is_file()
                               else root / f"{split}.h5")
    if flavour == "mat":
        if split != "train":
            raise HmrError("the official MPII release has no validation split: use the hourglass "
                           "annot/valid.h5 or MMPose's mpii_val.json")
        return persons_from_mat(root / MAT_PATH)
    path = Path(get_option(options, OPTIONS, "json") or JSON_NAMES[split])
    return persons_from_json(path if path.is_absolute() else root / path)


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    flavour = choose_flavour(root, split, options)
    shift = 1.0 if get_option(options, OPTIONS, "one_based") else 0.0
    bbox_mode = get_option(options, OPTIONS, "bbox")
    min_keypoints = get_option(options, OPTIONS, "min_keypoints")
    if min_keypoints is None:
        min_keypoints = NUM_JOINTS if get_option(options, OPTIONS, "preset") == "spin" else 1
    image_dir = get_option(options, OPTIONS, "images")

    def path_of(p):  # no flavour stores image sizes: every header is read
        return str(root / image_dir / p.image) if isinstance(p, MpiiPerson) else None

    kept = (p for p in _persons(root, split, flavour, options)
            if isinstance(p, BadRecord) or p.joints[:, 2].sum() >= min_keypoints)
    for p, size in attach_image_sizes(kept, path_of, workers=options.workers):
        if isinstance(p, BadRecord):
            yield p
        elif isinstance(size, str):
            yield BadRecord(str(root / image_dir / p.image), p.record, size)
        else:
            yield _person_sample(p, image_dir, size, shift, bbox_mode, flavour != "json")
