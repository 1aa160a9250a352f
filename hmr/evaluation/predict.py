"""``hmr predict``: SMPL parameters for people in images, as JSON/npz, with an overlay picture.

For each image (and its person box ``x, y, w, h`` in pixels; the whole image when no box is
given) the person is cropped and normalised as in evaluation and training (the model's
:class:`~hmr.core.crop.InputConfig`; square of side ``crop_scale × max(w, h)``), the network
predicts SMPL, and three files are written:

- ``<stem>.json``: ``global_orient`` (3,) and ``body_pose`` (69,) axis-angle (rad),
  ``betas`` (10,) (for models that regress SMPL; Graphormer gives its mesh only),
  ``cam`` = weak perspective [s, tx, ty], ``cam_t`` (m) for the crop camera,
  ``crop_intrinsics`` (px, crop of ``crop_px``), ``image_intrinsics``: the same camera in full
  image pixels (so ``cam_t`` places the body in the original image), ``bbox_xywh``;
- ``<stem>.npz``: the same arrays plus ``vertices`` (6890, 3) in metres (camera frame, crop
  camera), no pickles;
- ``<stem>_overlay.png``: the crop and the predicted mesh rendered over it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from hmr.core.crop import DEFAULT_CROP_SCALE, box_to_square
from hmr.core.errors import ConfigError
from hmr.core.geometry import matrix_to_axis_angle
from hmr.core.utils.atomic import atomic_path, atomic_write_bytes, atomic_write_text, remove_partials_in
from hmr.evaluation.run import BodyModels, overlay_mesh, read_crop
from hmr.models import prediction_meshes, to_prediction
from hmr.models.checkpoint import load_model


def _image_box(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.array([0.0, 0.0, img.shape[1], img.shape[0]])


def predict_images(checkpoint: str | os.PathLike, images: list[str | os.PathLike], out_dir: str | os.PathLike, *,
                   bboxes: list[list[float]] | None = None, crop_scale: float | None = None, device: str = "",
                   body_model: str | None = None) -> list[Path]:
    """Predict every image; ``bboxes``: one box for all images or one per image (none: the
    whole image). ``crop_scale`` (crop side / max box side): by default the scale the
    checkpoint was trained with around a given box, 1.0 around a whole image."""
    if bboxes and len(bboxes) not in (1, len(images)):
        raise ConfigError(f"give one --bbox for all images or one per image ({len(images)}), got {len(bboxes)}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, _ = load_model(checkpoint, dev)
    if crop_scale is None:
        crop_scale = float(model.input_config.crop_scale or DEFAULT_CROP_SCALE) if bboxes else 1.0
    transform = model.input_config.with_crop_scale(crop_scale)
    neutral = BodyModels(body_model, dev)("neutral")
    size, focal = transform.size_px, model.config.focal_length_px
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Leftovers of a killed run removed once: a search of the folder per file written costs
    # O(files) each (18.8 ms a file at 30,000 files). Each file is still written under a
    # temporary name, renamed when complete, and fsynced.
    remove_partials_in(out)
    written = []
    for i, image in enumerate(images):
        path = Path(image)
        box = np.asarray(bboxes[0 if len(bboxes) == 1 else i], float) if bboxes else _image_box(path)
        crop = read_crop(path, box, size, crop_scale, i)
        x = torch.from_numpy(transform.normalise(crop))
        with torch.no_grad():
            pred = to_prediction(model(x[None].to(dev)))
            verts = prediction_meshes(pred, neutral).vertices[0].cpu().numpy()
        centre, side = box_to_square(box, crop_scale)
        a = side / size  # image px per crop px
        c = (size - 1) / 2.0
        crop_k = np.array([[focal, 0, c], [0, focal, c], [0, 0, 1.0]])
        image_k = np.array([[focal * a, 0, centre[0]], [0, focal * a, centre[1]], [0, 0, 1.0]])
        arrays = {}
        if pred.pose_rotmat is not None:  # a mesh-only model (Graphormer) gives no SMPL parameters
            aa = matrix_to_axis_angle(pred.pose_rotmat[0].double()).reshape(-1).cpu().numpy()
            arrays.update(global_orient=aa[:3], body_pose=aa[3:], betas=pred.betas[0].cpu().numpy())
        arrays.update(cam=pred.cam[0].cpu().numpy(), cam_t=pred.cam_t[0].cpu().numpy(), crop_intrinsics=crop_k,
                      image_intrinsics=image_k, bbox_xywh=box)
        record = {"image": str(path), "crop_px": size, **{k: np.asarray(v, float).tolist() for k, v in arrays.items()}}
        atomic_write_text(out / f"{path.stem}.json", json.dumps(record, indent=1) + "\n", many=True, fsync=True)
        with atomic_path(out / f"{path.stem}.npz", many=True, fsync=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, vertices=verts, **{k: np.asarray(v, np.float64) for k, v in arrays.items()})
        overlay = overlay_mesh(crop, verts, arrays["cam_t"], np.asarray(neutral.faces), focal)
        _, png = cv2.imencode(".png", np.ascontiguousarray(np.concatenate([crop, overlay], axis=1)[..., ::-1]))
        atomic_write_bytes(out / f"{path.stem}_overlay.png", png.tobytes(), many=True, fsync=True)
        written += [out / f"{path.stem}.json", out / f"{path.stem}.npz", out / f"{path.stem}_overlay.png"]
    return written
