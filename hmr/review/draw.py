"""Pictures of one sample for ``hmr review``: a thumbnail cropped by the person box, and the
sample view (image, SMPL or SMPL-X mesh projected with the sample's camera, box, 2-D keypoints).

The keypoints and skeleton follow :func:`hmr.core.schema.inspect.draw_samples` (the store's
convention, its ``skeleton`` edges, only labelled joints), drawn with OpenCV at exact pixels:
joints whose name has the word ``left`` in :data:`LEFT`, ``right`` in :data:`RIGHT`, the rest
in :data:`CENTRE`. The mesh is rendered by the project's rasteriser (:func:`hmr.core.render.render_mesh`)
in the camera frame: SMPL posed by the sample's parameters, moved by ``smpl_transl`` and
projected with ``cam_intrinsics``; a sample without SMPL, translation or intrinsics gets none.
A sample with SMPL-X only (PROX, AGORA ``fit=smplx``: the ``extra_smplx_*`` columns) gets the
SMPL-X mesh instead (:func:`sample_smplx_mesh`).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from hmr.core.keypoints import get_convention
from hmr.core.sources import SOURCES
from hmr.core.schema.inspect import _load_image

LEFT = (40, 120, 255)    # RGB: blue
RIGHT = (255, 60, 40)    # red
CENTRE = (60, 220, 60)   # green
BOX = (255, 220, 0)      # yellow
THUMB_PX = 160
_models: dict[tuple, object] = {}  # (gender, folder) SMPL, ('smplx', gender, folder) SMPL-X
_models_lock = threading.Lock()


def sample_image(store, sample: dict, image_root: str | None = None) -> tuple[np.ndarray, bool]:
    """The sample's image (RGB), or a grey canvas of its ``image_hw`` when it cannot be read."""
    img = _load_image(store, sample, image_root)
    if img is not None:
        return img, True
    h, w = (max(int(v), 1) for v in sample["image_hw"])
    return np.full((h, w, 3), 200, np.uint8), False


def thumbnail(store, sample: dict, size: int = THUMB_PX) -> np.ndarray:
    """A square crop around the person box (10 % margin), ``size`` pixels a side, RGB."""
    img, _ = sample_image(store, sample)
    x, y, w, h = (float(v) for v in sample["bbox_xywh"])
    if w <= 1 or h <= 1:  # no box: the whole image
        x, y, h, w = 0.0, 0.0, *img.shape[:2]
    side = max(w, h) * 1.1
    cx, cy = x + w / 2, y + h / 2
    scale = size / side
    m = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_AREA, borderValue=(30, 30, 30))


def _body_model(gender: str, path: str | None = None):
    from hmr.core.body.smpl import load_body_model

    with _models_lock:
        if (gender, path) not in _models:
            _models[gender, path] = load_body_model(path, gender=gender)
        return _models[gender, path]


WEAK_CAM_FOCAL_PX = 50000.0  # a long lens that makes a perspective camera all but weak-perspective


def sample_camera(sample: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(intrinsics (3, 3) px, translation (3,) m) that place the sample's SMPL body, or None.

    Stored translation and intrinsics when the sample has both. Otherwise, for fits that keep
    a weak-perspective crop camera ``extra_weak_cam = [s, tx, ty]`` (EFT, see converters/eft.py:
    ``px = box centre + box size / 2 * (s * [X, Y] + [tx, ty])``), its perspective equivalent:
    focal f, principal point at the box centre, translation ``(tx / s, ty / s, f / (s * size / 2))``
    — the same pixels up to the body's depth relief over hundreds of metres (< 0.5 px).
    """
    if sample["has_smpl_transl"] and sample["has_intrinsics"]:
        return np.asarray(sample["cam_intrinsics"], np.float64), np.asarray(sample["smpl_transl"], np.float64)
    cam = sample.get("extra_weak_cam")
    if cam is None:
        return None
    s, tx, ty = (float(v) for v in np.asarray(cam, np.float64).reshape(-1)[:3])
    x, y, w, h = (float(v) for v in sample["bbox_xywh"])
    if not (s > 0 and w > 0 and h > 0):
        return None
    f = WEAK_CAM_FOCAL_PX
    half_w, half_h = w / 2, h / 2
    # fx / z = s * half_w and fy / z = s * half_h: one depth, so fy follows the box's aspect
    z = f / (s * half_w)
    k = np.array([[f, 0, x + half_w], [0, f * half_h / half_w, y + half_h], [0, 0, 1]])
    return k, np.array([tx / s, ty / s, z])


def has_smplx(sample: dict) -> bool:
    """Whether the sample carries an SMPL-X fit in ``extra_smplx_*`` columns (PROX, AGORA):
    ``extra_has_smplx`` where the store has it, else any non-zero pose, shape or translation
    value (the rule of :mod:`hmr.fitting.smplx_transfer`)."""
    if "extra_smplx_global_orient" not in sample or "extra_smplx_body_pose" not in sample:
        return False
    if "extra_has_smplx" in sample:
        return bool(np.asarray(sample["extra_has_smplx"]).reshape(-1)[0])
    return any(np.asarray(sample[f"extra_smplx_{k}"]).any()
               for k in ("global_orient", "body_pose", "betas", "transl") if f"extra_smplx_{k}" in sample)


def smplx_camera(sample: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(intrinsics (3, 3) px, rotation (3, 3), translation (3,) m) taking the SMPL-X body's
    vertices into the camera frame, or None when nothing places it.

    The SMPL-X fits of PROXD and AGORA are stored in the camera frame (identity rotation);
    PROX's MoSh++ fits are in the Vicon frame (``extra_smplx_in_camera_frame`` 0), which
    ``cam_extrinsics`` takes to the camera: applied here to the vertices (a rigid map of the
    posed mesh needs no body model, unlike moving the root of the parameters)."""
    if not sample["has_intrinsics"]:
        return None
    k = np.asarray(sample["cam_intrinsics"], np.float64)
    frame = sample.get("extra_smplx_in_camera_frame")
    if frame is not None and not int(np.asarray(frame).reshape(-1)[0]):
        if not sample["has_extrinsics"]:
            return None
        ext = np.asarray(sample["cam_extrinsics"], np.float64)
        return k, ext[:3, :3], ext[:3, 3]
    return k, np.eye(3), np.zeros(3)


def mesh_model(sample: dict) -> str | None:
    """The body model the sample view draws: ``"smpl"`` when the sample has SMPL, else
    ``"smplx"`` when it has an SMPL-X fit, else None."""
    return "smpl" if sample["has_smpl"] else "smplx" if has_smplx(sample) else None


def mesh_status(sample: dict) -> str:
    """Why the sample view has a mesh or not, for the page (no torch needed): ``"drawn"``
    (SMPL, or SMPL-X when the sample has only that: :func:`mesh_model`), ``"no SMPL"``,
    ``"no camera: mesh not drawn"`` (SMPL but neither translation with intrinsics nor a
    weak-perspective camera; SMPL-X without intrinsics, or in another frame than the camera's
    without extrinsics) or ``"behind the camera: mesh not drawn"``."""
    model = mesh_model(sample)
    if model is None:
        return "no SMPL"
    if model == "smplx":
        camera = smplx_camera(sample)
        if camera is None:
            return "no camera: mesh not drawn"
        transl = np.asarray(sample.get("extra_smplx_transl", np.zeros(3)), np.float64).reshape(3)
        depth = (camera[1] @ transl + camera[2])[2]  # the root's depth, near enough for a verdict
        return "drawn" if depth > 0 else "behind the camera: mesh not drawn"
    camera = sample_camera(sample)
    if camera is None:
        return "no camera: mesh not drawn"
    if not camera[1][2] > 0:
        return "behind the camera: mesh not drawn"
    return "drawn"


def sample_mesh(sample: dict, body_model: str | None = None, smplx_model: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(vertices in the camera frame (V, 3) m, faces, intrinsics) or None when the sample has
    neither SMPL nor SMPL-X, or nothing places it (:func:`sample_camera`, :func:`smplx_camera`).
    ``body_model``: SMPL folder (None: $HMR_BODY_MODEL, else the mannequin); ``smplx_model``:
    SMPL-X folder (None: $HMR_SMPLX_MODEL, else the SMPL-X mannequin)."""
    if not sample["has_smpl"]:
        return sample_smplx_mesh(sample, smplx_model) if has_smplx(sample) else None
    camera = sample_camera(sample)
    if camera is None:
        return None
    import torch

    from hmr.core.schema.fields import GENDERS

    gender = GENDERS[int(sample["gender"])] if int(sample["gender"]) < len(GENDERS) else "neutral"
    model = _body_model(gender if gender in ("male", "female") else "neutral", body_model)
    with torch.no_grad():
        out = model(global_orient=torch.from_numpy(np.asarray(sample["smpl_global_orient"])[None]),
                    body_pose=torch.from_numpy(np.asarray(sample["smpl_body_pose"])[None]),
                    betas=torch.from_numpy(np.asarray(sample["smpl_betas"])[None]))
    verts = out.vertices[0].numpy().astype(np.float64) + camera[1]
    return verts, np.asarray(model.faces), camera[0]


def _smplx_body(gender: str, path: str | None = None):
    from hmr.core.body.smplx_model import load_smplx_model

    with _models_lock:
        if ("smplx", gender, path) not in _models:
            # flat hand mean: the parameters below come with absolute hand poses
            _models["smplx", gender, path] = load_smplx_model(path, gender=gender, flat_hand_mean=True)
        return _models["smplx", gender, path]


def sample_smplx_mesh(sample: dict, smplx_model: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(vertices in the camera frame (V, 3) m, faces, intrinsics) of the sample's SMPL-X fit, or
    None without one or without a camera (:func:`smplx_camera`).

    The columns are read as ``hmr smplx-to-smpl`` reads them (one reader,
    :func:`hmr.fitting.smplx_transfer.smplx_params`): PCA hand poses (PROX: 12 components,
    ``extra_smplx_hand_pca``; AGORA: ``extra_smplx_num_pca_comps`` 0, axis-angle) expanded with
    the model's components, the mean hand added unless ``extra_smplx_flat_hand_mean``;
    ``extra_smplx_gender`` (AGORA) or ``gender`` picks the model. AGORA's children are drawn
    with the adult shape (the kid template is not loaded here)."""
    camera = smplx_camera(sample) if has_smplx(sample) else None
    if camera is None:
        return None
    import torch

    from hmr.core.schema.fields import GENDERS
    from hmr.fitting.smplx_transfer import smplx_params  # the transfer's reader: written once

    code = int(np.asarray(sample.get("extra_smplx_gender", sample["gender"])).reshape(-1)[0])
    gender = GENDERS[code] if code < len(GENDERS) else "neutral"
    model = _smplx_body(gender if gender in ("male", "female") else "neutral", smplx_model)
    cols = {k: np.asarray(v)[None] for k, v in sample.items() if k.startswith("extra_smplx_")}
    cols["image_path"] = np.array([sample["image_path"]], dtype=object)
    with torch.no_grad():
        params = smplx_params(cols, np.array([0]), model, torch.float32, "cpu")
        verts = model(**params).vertices[0].numpy().astype(np.float64)  # (10475, 3), fit frame
    k, rot, transl = camera
    return verts @ rot.T + transl, model.faces, k


def side_colour(name: str) -> tuple[int, int, int]:
    """LEFT for ``left_wrist``, ``smpl_left_hip``, ``left_big_toe_openpose``; RIGHT likewise."""
    words = name.split("_")
    return LEFT if "left" in words else RIGHT if "right" in words else CENTRE


def skeleton_edges(store) -> list[tuple[int, int]]:
    """Edges (store joint indices) of the store's convention and, for a store in the superset,
    of its source's own convention (``hmr.core.sources``: COCO's torso lines, say), by name."""
    conv = get_convention(store.attrs["keypoint_convention"])
    pos = {n: i for i, n in enumerate(conv.joint_names)}
    pairs = list(conv.skeleton)
    source = SOURCES.get(store.dataset)
    if source is not None and source.convention and source.convention != conv.name:
        try:
            pairs += list(get_convention(source.convention).skeleton)
        except KeyError:  # a source convention not registered: the store's edges only
            pass
    edges = {(pos[a], pos[b]) for a, b in pairs if a in pos and b in pos}
    return sorted(edges)


def sample_view(store, sample: dict, *, mesh: bool = True, radius: int = 4,
                body_model: str | None = None, smplx_model: str | None = None) -> tuple[np.ndarray, dict]:
    """The sample view (RGB) and what was drawn: ``{"image": bool, "mesh": bool, "keypoints": n}``."""
    img, found = sample_image(store, sample)
    drawn = {"image": found, "mesh": False, "keypoints": 0}
    h, w = img.shape[:2]
    if mesh:
        from hmr.core.render import render_mesh  # torch comes with it: not on the page's first load

        placed = sample_mesh(sample, body_model, smplx_model)
        if placed is not None and (placed[0][:, 2] > 0).all():
            rgb, coverage, _ = render_mesh(placed[0], placed[1], placed[2], h, w, background=img, supersample=1)
            alpha = 0.6 * coverage[..., None]  # see the image through the mesh
            img = (img * (1 - alpha) + rgb * alpha).astype(np.uint8)
            drawn["mesh"] = bool(coverage.any())
    img = np.ascontiguousarray(img)
    x, y, bw, bh = (float(v) for v in sample["bbox_xywh"])
    thick = max(1, round(max(h, w) / 400))
    if bw > 0 and bh > 0:
        cv2.rectangle(img, (round(x), round(y)), (round(x + bw), round(y + bh)), BOX, thick)
    names = get_convention(store.attrs["keypoint_convention"]).joint_names
    kp = np.asarray(sample["keypoints2d"], dtype=np.float64)
    vis = kp[:, 2] > 0
    for a, b in skeleton_edges(store):
        if vis[a] and vis[b]:
            colour = side_colour(names[a]) if side_colour(names[a]) == side_colour(names[b]) else CENTRE
            cv2.line(img, (round(kp[a, 0]), round(kp[a, 1])), (round(kp[b, 0]), round(kp[b, 1])), colour,
                     thick, cv2.LINE_AA)
    for j in np.flatnonzero(vis):  # joints last, over the lines: their centre pixel is exact
        cv2.circle(img, (round(kp[j, 0]), round(kp[j, 1])), radius, side_colour(names[j]), -1)
        drawn["keypoints"] += 1
    return img, drawn


def encode(rgb: np.ndarray, ext: str = ".png", quality: int = 90) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise ValueError("cannot encode the picture")
    return buf.tobytes()


__all__ = ["LEFT", "RIGHT", "CENTRE", "BOX", "thumbnail", "sample_view", "sample_mesh", "sample_smplx_mesh",
           "mesh_model", "mesh_status", "encode"]
