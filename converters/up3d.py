"""UP-3D (Unite the People, CVPR 2017): images with 14 LSP joints and human-rated SMPLify
fits -> schema v1, one person per image.

Raw layout (``up-3d.zip`` from files.is.tuebingen.mpg.de/classner/up, unzipped; ROOT is the
flat ``up-3d/`` folder)::

    ROOT/{trainval,train,val,test}.txt     # one line per image: '/00001_image.png'
    ROOT/%05d_image.png                    # the image
    ROOT/%05d_joints.npy                   # (3, 14): x row, y row, a flag row; LSP order
    ROOT/%05d_body.pkl                     # the SMPLify fit (python-2 pickle)
    ROOT/%05d_fit_crop_info.txt            # 'H W y0 y1 x0 x1': the image region the fit saw
    ROOT/%05d_quality_info.txt             # 'high' or 'medium' (the raters' verdict)
    ROOT/%05d_dataset_info.txt             # '<dataset> <index>' (lsp, lspet, mpii, fashionpose)
    ROOT/%05d_render_light.png             # the fit rendered into the full image (white = none)

What each file holds, read in the publisher's code (classner/up): ``3dfit/bodyfit.py`` writes
``_body.pkl`` with ``cPickle.dump`` (protocol 0) as a dict of ``pose`` (72,), ``betas`` (10,),
``trans`` (3,), ``t`` (3,), ``rt`` (3,) camera translation and Rodrigues rotation, ``f`` the
focal length (5000 px), and ``j2d`` (the projected fit joints); all numpy arrays (``.r`` of
the chumpy variables); the camera is opendr's ``ProjectPoints(rt, t, f=(f, f), c=(w/2, h/2))``
of the image the fit was run on, the neutral SMPL model. The pickles are read through the
restricted unpickler (``encoding='latin1'``; chumpy objects, should a file hold one, become
their arrays). ``direct3d/tools/create_dataset.py`` and
``segmentation/tools/create_dataset.py`` read the crop file as ``H W y0 y1 x0 x1``: the fit
image is ``image[y0:y1, x0:x1]`` resized to H x W (``uncrop`` pastes a fit rendering back with
exactly that resize), and take a joint as present when both its coordinates are > 0.

The crop frame mapped back to the full image
--------------------------------------------
A fit pixel ``u`` is the full-image pixel ``x0 + u (x1 - x0) / W`` (and the same in y), so
the fit's camera in full-image pixels is ``fx = f (x1 - x0) / W``, ``fy = f (y1 - y0) / H``,
``c = (x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2)`` (the crop's centre): ``cam_intrinsics``.
SMPL goes into that camera's frame: with ``R = Rodrigues(rt)``, ``global_orient =
R R(pose[:3])`` and ``transl = R (J0 + trans) + t - J0`` (J0 = the rest pelvis of the
neutral body model: SMPL rotates about it; :func:`converters.pw3d.world_to_camera_smpl`).
The released fits have ``rt = 0`` and ``trans = 0``, which makes the camera-frame SMPL the
fit itself with ``transl = t``. SPIN / GraphCMR (``datasets/preprocess/up_3d.py``) and
MMHuman3D (``up3d.py``) keep ``pose`` and ``betas`` with the full image as given and drop the
camera (``t``, ``f``, the crop); here it is kept, so the store's SMPL projects onto the
image with the stored intrinsics.

Samples: the images listed in ``<split>.txt`` (``-o quality=high`` keeps only 'high' fits,
ROMP's choice; default all, as SPIN and MMHuman3D); ``keypoints2d`` the 14 LSP joints
(convention ``lsp``; confidence 1 when both coordinates are > 0, the publisher's rule, else
0 at (0, 0)); the flag row is kept as ``extra_joint_flag`` (14,) (its meaning is not stated
by the publisher; SPIN and GraphCMR use it as the confidence); no 3D joints (UP-3D has no 3D
measurement: the fit is the 3D). Box (``-o bbox=``): ``render`` (default) the non-white
pixels of ``_render_light.png`` enlarged 1.2x (SPIN's and GraphCMR's rule), ``keypoints``
the present joints' box 1.2x; a missing render falls back to the keypoints. ``has_smpl``
with ``smpl_source = "smplify"``, ``gender`` neutral, ``image_hw`` from the PNG header,
``source_key`` ``<split>.txt:<line>``; extras ``extra_quality``, ``extra_source_dataset``,
``extra_source_index`` (from ``_dataset_info.txt``), ``extra_fit_crop`` (6,).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.labels import intrinsics_matrix, to_superset
from converters.options import ConvertOptions, Option, get_option
from converters.pw3d import BodyModels, rest_pelvis, world_to_camera_smpl
from converters.readers import image_size_hw, read_pickle, require_file
from hmr.core.boxes import bbox_from_keypoints
from hmr.core.errors import DatasetFormatError
from hmr.core.schema import GENDERS, SMPL_SOURCES
from hmr.core.sources import SOURCES
from hmr.core.utils.safe_pickle import to_numpy_tree

SOURCE = SOURCES["up3d"]
VERSION = "1"

OPTIONS = (
    Option("quality", "any", str, "keep fits rated 'any' or only 'high'", choices=("any", "high")),
    Option("bbox", "render", str, "box from the fit rendering or from the joints",
           choices=("render", "keypoints")),
)


@dataclass
class Fit:
    """One ``_body.pkl`` with its crop, in the fit image's pixels."""

    pose: np.ndarray       # (72,)
    betas: np.ndarray      # (10,)
    trans: np.ndarray      # (3,)
    rt: np.ndarray         # (3,) Rodrigues
    t: np.ndarray          # (3,)
    f: float               # px in the fit image
    crop: np.ndarray       # (6,) H W y0 y1 x0 x1


def split_ids(root: Path, split: str) -> list[tuple[int, int]]:
    """[(line number, image id)] of ``ROOT/<split>.txt``."""
    path = Path(root) / f"{split}.txt"
    if not path.is_file():
        nested = Path(root) / "up-3d" / f"{split}.txt"
        hint = f" (found {nested}: pass --root {nested.parent})" if nested.is_file() else ""
        raise DatasetFormatError(f"no split list{hint}", path=path)
    out = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        name = line.strip().lstrip("/")
        if not name:
            continue
        stem = name.removesuffix("_image.png")
        if stem == name or not stem.isdigit():
            raise DatasetFormatError(f"line {n} is {line!r}, expected '/NNNNN_image.png'", path=path, record=n)
        out.append((n, int(stem)))
    return out


def _vector(data: dict, key: str, size: int) -> np.ndarray:
    arr = np.asarray(data[key], dtype=np.float64).reshape(-1)
    if arr.size != size:
        raise ValueError(f"'{key}' holds {arr.size} values, expected {size}")
    return arr


def read_fit(root: Path, image_id: int) -> Fit:
    """``%05d_body.pkl`` and ``%05d_fit_crop_info.txt``; ValueError / DatasetFormatError on bad ones."""
    path = require_file(root / f"{image_id:05d}_body.pkl")
    data = to_numpy_tree(read_pickle(path, allow_chumpy=True))
    if not isinstance(data, dict):
        raise TypeError("the fit pickle is not a dict")
    missing = [k for k in ("pose", "betas", "t", "f") if k not in data]
    if missing:
        raise ValueError(f"the fit lacks {', '.join(missing)}")
    fit = Fit(_vector(data, "pose", 72), _vector(data, "betas", 10)[:10],
              _vector(data, "trans", 3) if "trans" in data else np.zeros(3),
              _vector(data, "rt", 3) if "rt" in data else np.zeros(3), _vector(data, "t", 3),
              float(np.asarray(data["f"], dtype=np.float64).reshape(-1)[0]), read_crop(root, image_id))
    values = np.concatenate([fit.pose, fit.betas, fit.trans, fit.rt, fit.t, [fit.f]])
    if not np.isfinite(values).all():
        raise ValueError("NaN or inf in the fit")
    return fit


def read_crop(root: Path, image_id: int) -> np.ndarray:
    path = require_file(root / f"{image_id:05d}_fit_crop_info.txt")
    try:
        crop = np.array([int(v) for v in path.read_text().split()[:6]], dtype=np.int64)
    except ValueError:
        crop = np.zeros(0)
    h, w, y0, y1, x0, x1 = crop if len(crop) == 6 else (0,) * 6
    if len(crop) != 6 or h <= 0 or w <= 0 or y1 <= y0 or x1 <= x0 or y0 < 0 or x0 < 0:
        raise ValueError(f"{path.name} is not 'H W y0 y1 x0 x1' with a non-empty box")
    return crop


def full_image_camera(f: float, crop: np.ndarray) -> np.ndarray:
    """K (3, 3) in full-image pixels of the fit camera (focal ``f``, centre of the H x W fit
    image) whose image is ``full[y0:y1, x0:x1]`` resized to H x W."""
    h, w, y0, y1, x0, x1 = (float(v) for v in crop)
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    return intrinsics_matrix(f * sx, f * sy, x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2)


def read_text(root: Path, image_id: int, kind: str) -> str:
    path = root / f"{image_id:05d}_{kind}.txt"
    return path.read_text(errors="replace").strip() if path.is_file() else ""


def joints(root: Path, image_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints (14, 3) px + confidence, flag row (14,)) of ``%05d_joints.npy``."""
    path = require_file(root / f"{image_id:05d}_joints.npy")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"unreadable joints file ({exc})") from None
    if arr.shape != (3, 14) or not np.isfinite(arr).all():
        raise ValueError(f"{path.name} has shape {arr.shape} (expected (3, 14), finite)")
    kps = np.zeros((14, 3))
    present = (arr[0] > 0) & (arr[1] > 0)
    kps[present, :2] = arr[:2, present].T
    kps[present, 2] = 1.0
    return kps, arr[2].astype(np.float32)


def render_box(root: Path, image_id: int) -> np.ndarray | None:
    """Non-white pixels of ``%05d_render_light.png`` as a 1.2x box, or None."""
    import cv2

    path = root / f"{image_id:05d}_render_light.png"
    image = cv2.imread(str(path)) if path.is_file() else None
    if image is None:
        return None
    ys, xs = np.nonzero(image.min(axis=2) < 255)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    centre, size = np.array([x0 + x1, y0 + y1]) / 2, np.array([x1 - x0, y1 - y0]) * 1.2
    return np.concatenate([centre - size / 2, size]).astype(np.float32)


def raw_files(root: Path, split: str) -> list[Path]:
    path = Path(root) / f"{split}.txt"
    return [path] if path.is_file() else []


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    high_only = get_option(options, OPTIONS, "quality") == "high"
    box_from_render = get_option(options, OPTIONS, "bbox") == "render"
    models = BodyModels(options.body_model)
    for line, image_id in split_ids(root, split):
        key = f"{split}.txt:{line}"
        quality = read_text(root, image_id, "quality_info")
        if high_only and quality != "high":
            continue  # a documented selection, not an error
        try:
            yield _sample(root, image_id, key, quality, box_from_render, models)
        except (ValueError, TypeError) as exc:  # a bad file of this image: the record cannot be converted
            yield BadRecord(str(root / f"{image_id:05d}_body.pkl"), key, str(exc))
        except DatasetFormatError as exc:  # a missing or unreadable file of this image
            yield BadRecord(str(exc.path), key, exc.message)


def _sample(root: Path, image_id: int, key: str, quality: str, box_from_render: bool,
            models: BodyModels) -> dict:
    image = f"{image_id:05d}_image.png"
    kps, flags = joints(root, image_id)
    fit = read_fit(root, image_id)
    hw = image_size_hw(root / image)
    if fit.crop[3] > hw[0] or fit.crop[5] > hw[1]:
        raise ValueError(f"the fit crop {fit.crop[2:].tolist()} (y0 y1 x0 x1) leaves the {hw[0]}x{hw[1]} image")
    model = models.get("neutral")
    cam = np.eye(4)
    cam[:3, :3], cam[:3, 3] = _rodrigues(fit.rt), fit.t
    orient, transl = world_to_camera_smpl(fit.pose[None, :3], fit.trans[None], rest_pelvis(model, fit.betas),
                                          cam[None])
    box = render_box(root, image_id) if box_from_render else None
    box = box if box is not None else bbox_from_keypoints(kps, scale=1.2)
    if box is None:
        raise ValueError("fewer than two joints and no rendering: no box")
    source, _, index = read_text(root, image_id, "dataset_info").partition(" ")
    return {
        "image_path": image, "image_hw": np.asarray(hw, dtype=np.int32), "bbox_xywh": box,
        "keypoints2d": to_superset(kps, "lsp"),
        "has_smpl": True, "smpl_source": SMPL_SOURCES.index("smplify"),
        "smpl_global_orient": orient[0], "smpl_body_pose": fit.pose[3:], "smpl_betas": fit.betas,
        "has_smpl_transl": True, "smpl_transl": transl[0], "gender": GENDERS.index("neutral"),
        "has_intrinsics": True, "cam_intrinsics": full_image_camera(fit.f, fit.crop),
        "person_id": 0, "source_key": key,
        "extra_quality": quality, "extra_source_dataset": source,
        "extra_source_index": np.int32(int(index) if index.strip().isdigit() else -1),
        "extra_fit_crop": fit.crop.astype(np.int32), "extra_joint_flag": flags,
    }


def _rodrigues(rt: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(rt).as_matrix()

