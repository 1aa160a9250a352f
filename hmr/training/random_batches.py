"""Batches of random bodies drawn on the fly, for smoke runs.

Used by the tiny CPU config (``data.source = "random"``) and the trainer tests: it needs
no dataset, yet its batches have exactly the loaders' form (see :mod:`hmr.training.objective`)
and images that depend on the labels (the body model's mesh, shaded, over a noisy
background), so a model can actually fit them. Each batch is a pure function of its seed.

Camera: the crop camera of HMR/SPIN (focal ``focal_length_px``, principal point at the crop
centre), the body at the depth where the mean weak-perspective scale 0.9 puts it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from hmr.core.crop import IMAGENET_MEAN, IMAGENET_STD
from hmr.core.geometry import perspective_projection
from hmr.core.render import render_mesh
from hmr.training.objective import predicted_joints


def random_pose_aa(batch: int, generator: torch.Generator, body_std: float = 0.3
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Upright-ish global orientation ``(B, 3)`` (π about x: SMPL's y-up body in the y-down
    camera frame) and a random body pose ``(B, 69)``, axis-angle."""
    root = torch.tensor([math.pi, 0.0, 0.0]).repeat(batch, 1) + 0.2 * torch.randn(batch, 3, generator=generator)
    body = body_std * torch.randn(batch, 69, generator=generator)
    return root, body


def _render(vertices_cam: torch.Tensor, faces: np.ndarray, intrinsics: np.ndarray, crop_px: int,
            rng: np.random.Generator) -> np.ndarray:
    background = rng.integers(0, 256, (crop_px, crop_px, 3), dtype=np.uint8)
    image, _, _ = render_mesh(vertices_cam.numpy(), faces, intrinsics, crop_px, crop_px,
                              background=background, supersample=1)
    return image


@torch.no_grad()
def random_body_batch(body_model, batch: int, *, seed: int = 0, crop_px: int = 64,
                    focal_length_px: float = 5000.0, convention: str = "spin_49",
                    render: bool = True) -> dict:
    """One loader-shaped batch; ``render=False`` gives noise images (faster)."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    root, body = random_pose_aa(batch, g)
    betas = 0.5 * torch.randn(batch, 10, generator=g)
    out = body_model(global_orient=root, body_pose=body, betas=betas)
    joints = predicted_joints(out, convention).float().cpu()  # (B, K, 3)
    depth = 2 * focal_length_px / (crop_px * 0.9)
    transl = torch.cat([0.1 * torch.randn(batch, 2, generator=g), torch.full((batch, 1), depth)], dim=1)
    # keypoints in [-1, 1] crop coordinates: projection about the crop centre / half size
    kp2d = perspective_projection(joints, focal_length_px, 0.0, translation=transl) / (crop_px / 2.0)
    conf = torch.ones(*joints.shape[:2], 1)
    c = (crop_px - 1) / 2.0
    intrinsics = torch.tensor([[focal_length_px, 0, c], [0, focal_length_px, c], [0, 0, 1.0]])
    if render:
        faces = np.asarray(body_model.faces)
        verts = out.vertices.float().cpu() + transl[:, None]
        imgs = np.stack([_render(verts[i], faces, intrinsics.numpy(), crop_px, rng) for i in range(batch)])
        img = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        std = torch.tensor(IMAGENET_STD)[:, None, None]
        img = (img - mean) / std
    else:
        img = torch.randn(batch, 3, crop_px, crop_px, generator=g)
    has_smpl = torch.ones(batch, dtype=torch.bool)
    has_smpl[::3] = False  # some samples without SMPL labels, as in real mixes
    return {
        "img": img, "keypoints2d": torch.cat([kp2d, conf], -1),
        "keypoints3d": torch.cat([joints + transl[:, None], conf], -1),
        "smpl_global_orient": root, "smpl_body_pose": body, "smpl_betas": betas, "has_smpl": has_smpl,
        "smpl_transl": transl, "has_smpl_transl": torch.ones(batch, dtype=torch.bool),
        "cam_intrinsics": intrinsics.repeat(batch, 1, 1), "has_intrinsics": torch.ones(batch, dtype=torch.bool),
        "crop_to_image": torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).repeat(batch, 1, 1),
        "image_hw": torch.full((batch, 2), crop_px, dtype=torch.int32),
        "gender": torch.zeros(batch, dtype=torch.uint8),
        "key": [f"random/{seed}/{i}" for i in range(batch)], "dataset": ["random"] * batch,
    }


class RandomBodyBatches:
    """``num_distinct`` batches generated once (seeds ``seed .. seed + n - 1``) and cycled
    forever; ``stream(start_step)`` starts at batch ``start_step`` (exact resume)."""

    def __init__(self, body_model, batch: int, *, num_distinct: int = 8, seed: int = 0, **kwargs):
        self.batches = [random_body_batch(body_model, batch, seed=seed + i, **kwargs) for i in range(num_distinct)]

    def stream(self, start_step: int = 0) -> Iterator[dict]:
        i = start_step
        while True:
            yield self.batches[i % len(self.batches)]
            i += 1

    def __call__(self, start_step: int = 0) -> Iterator[dict]:
        return self.stream(start_step)
