"""SMPLify, batched: SMPL parameters that explain 2D keypoints, as SPIN runs it.

Input per sample: keypoints ``(B, 73, 3)`` (pixels + confidence, ``FIT_JOINT_NAMES`` order,
see :mod:`hmr.fitting.camera`; :func:`~hmr.fitting.camera.fit_keypoints` maps a store's
keypoints there), a pinhole ``K`` ``(B, 3, 3)`` in the same pixel frame, and optionally a start
(:class:`SMPLParams`; default SPIN's mean pose and shape from ``smpl_mean_params.npz`` with the
translation from the torso, :func:`~hmr.fitting.camera.init_translation`).

Two Adam stages (SPIN's defaults, :class:`SMPLifyConfig`):

1. camera: ``global_orient`` and ``transl`` on the torso joints, squared reprojection error
   plus ``100² (t_z − t_z,start)²`` keeping the depth near its start. Pose and shape are
   fixed, so the body is posed once and only rigidly moved (cheap).
2. body: everything, with ``Σ_j c_j² ρ(Δ_j)`` (Geman-McClure ρ(x) = σ² x² / (σ² + x²) per
   coordinate, σ = 100 px, c the confidence) + 4.78² · GMM pose prior + 15.2² · elbow/knee
   angle prior + 5² · ‖β‖².

Each sample's loss depends on its own parameters only and Adam is element-wise, so a batch
is exactly B independent fits run at once (``test_batch_equals_single_fits``). Every step
computes the 73 joints without the mesh (:class:`~hmr.fitting.joints_model.FitJointsModel`:
21 vertices posed, the regressed joints through pre-multiplied weights; the same fits as
through the full mesh, ``test_fits_equal_fits_through_the_full_mesh``; throughput:
``benchmarks/smplify.py``). The weights
are SPIN's, tuned for keypoints in a 224-px person crop with focal 5000 px: fit in that frame
(:func:`~hmr.fitting.camera.to_crop_frame`), as ``hmr fit`` does.

Measured on mannequin data, ``python -m hmr.fitting.problems --n 128 [--noise-px 5]`` (128
bodies with ``hmr.synth`` poses and shapes, upright and turned up to ±90°, their SMPL-24 +
SPIN-49 keypoints projected into 512-px images, known intrinsics, fitted in the 224-px crop
frame with our synthetic prior from SPIN's mean pose, defaults 100 + 100 steps; medians over
samples; 11 s on one CPU thread, 2026-11-23):

==========================================  =========  =======  ====================
                                            mean pose  SMPLify  SMPLify, 5 px noise
==========================================  =========  =======  ====================
2D error, image px (conf-weighted mean)     23.1       2.51     6.57 (noise: ~6.3)
MPJPE, SMPL-24, pelvis-aligned, mm          182.6      58.7     65.2
PA-MPJPE, SMPL-24, mm                       82.1       39.2     44.6
camera translation error, mm                --         157      184
==========================================  =========  =======  ====================

The 2D error drops ~9× (to the noise floor with noisy keypoints); 3D joints come within ~40 mm
after Procrustes. What remains is what 2D keypoints cannot fix within SPIN's 200 steps: depth
(of the body, and of limbs), and Adam at 1e-2 moving each angle at most ~1 rad per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from hmr.core.body import default_body_model_dir
from hmr.core.geometry import axis_angle_to_matrix, matrix_to_axis_angle, project_points, rot6d_to_matrix
from hmr.fitting.camera import (
    DEFAULT_IGNORED_JOINTS,
    FIT_JOINT_NAMES,
    MIN_DEPTH_M,
    TORSO_JOINTS,
    init_translation,
    joint_index,
)
from hmr.fitting.joints_model import FitJointsModel
from hmr.fitting.prior import MixturePosePrior, angle_prior, load_pose_prior, shape_prior

__all__ = ["SMPLify", "SMPLifyConfig", "SMPLifyResult", "SMPLParams", "gmof", "mean_smpl_params"]

@dataclass
class SMPLifyConfig:
    """Iterations, step size and loss weights (defaults: SPIN's SMPLify)."""

    camera_iters: int = 100
    body_iters: int = 100
    lr: float = 1e-2
    sigma_px: float = 100.0
    pose_prior_weight: float = 4.78 ** 2
    angle_prior_weight: float = 15.2 ** 2
    shape_prior_weight: float = 5.0 ** 2
    depth_weight: float = 100.0 ** 2
    ignored_joints: tuple[str, ...] = DEFAULT_IGNORED_JOINTS


@dataclass
class SMPLParams:
    """A batch of SMPL parameters (axis-angle, camera frame, metres)."""

    global_orient: torch.Tensor  # (B, 3)
    body_pose: torch.Tensor  # (B, 69)
    betas: torch.Tensor  # (B, 10)
    transl: torch.Tensor | None = None  # (B, 3); None: estimate from the torso

    def detach(self) -> "SMPLParams":
        return SMPLParams(*(None if t is None else t.detach().clone()
                            for t in (self.global_orient, self.body_pose, self.betas, self.transl)))

    def to(self, device, dtype) -> "SMPLParams":
        return SMPLParams(*(None if t is None else t.to(device=device, dtype=dtype)
                            for t in (self.global_orient, self.body_pose, self.betas, self.transl)))


@dataclass
class SMPLifyResult:
    params: SMPLParams
    reprojection_loss: torch.Tensor  # (B,) SPIN's Σ c² ρ(Δ), the number the fits table compares
    reprojection_error_px: torch.Tensor  # (B,) confidence-weighted mean 2D distance
    loss: torch.Tensor  # (B,) full objective of the body stage
    initial_reprojection_error_px: torch.Tensor = field(default=None)  # (B,) at the start


def gmof(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure ρ(x) = σ² x² / (σ² + x²), element-wise."""
    sq = residual ** 2
    return sigma ** 2 * sq / (sigma ** 2 + sq)


@lru_cache(maxsize=8)
def _mean_pose_betas(file: str) -> tuple[np.ndarray, np.ndarray]:
    """(72,) axis-angle and (10,) betas of a ``smpl_mean_params.npz``, or the fallback."""
    if not Path(file).is_file():
        pose = np.zeros(72)
        pose[0] = np.pi
        return pose, np.zeros(10)
    with np.load(file, allow_pickle=False) as data:
        rot6d = torch.as_tensor(data["pose"], dtype=torch.float64).reshape(24, 6)
        betas = np.asarray(data["shape"], dtype=np.float64).reshape(10)
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d)).reshape(72).numpy(), betas


def mean_smpl_params(batch: int, path=None, dtype: torch.dtype = torch.float32, device=None) -> SMPLParams:
    """SPIN's mean pose and shape (``smpl_mean_params.npz``: ``pose`` (144,) 6D, ``shape``
    (10,)) from the body-model folder, zero translation. Without the file: the rest pose
    turned upright in the camera frame (π about x), zero shape."""
    file = Path(path) if path is not None else default_body_model_dir() / "smpl_mean_params.npz"
    pose_np, betas_np = _mean_pose_betas(str(file))
    pose = torch.as_tensor(pose_np, dtype=dtype, device=device)
    betas = torch.as_tensor(betas_np, dtype=dtype, device=device)
    return SMPLParams(pose[:3].expand(batch, 3).clone(), pose[3:].expand(batch, 69).clone(),
                      betas.expand(batch, 10).clone(), torch.zeros(batch, 3, dtype=dtype, device=device))


def _rotate_about(points: torch.Tensor, origin: torch.Tensor, orient_aa: torch.Tensor) -> torch.Tensor:
    """Rigidly rotate ``points`` (B, J, 3) by axis-angle ``orient_aa`` (B, 3) about ``origin`` (B, 3)."""
    rot = axis_angle_to_matrix(orient_aa)  # (B, 3, 3)
    return (points - origin[:, None]) @ rot.transpose(1, 2) + origin[:, None]


class SMPLify(torch.nn.Module):
    """Batched SMPLify on the body model's device (see the module docstring)."""

    def __init__(self, body_model, pose_prior: MixturePosePrior | None = None,
                 config: SMPLifyConfig | None = None):
        super().__init__()
        self.body_model = body_model
        self.joints_model = FitJointsModel(body_model)  # the 73 joints without the full mesh
        self.config = config or SMPLifyConfig()
        ref = body_model.v_template
        self.pose_prior = (pose_prior or load_pose_prior()).to(device=ref.device, dtype=ref.dtype)
        keep = torch.ones(len(FIT_JOINT_NAMES), dtype=ref.dtype, device=ref.device)
        keep[joint_index(list(self.config.ignored_joints))] = 0.0
        self.register_buffer("joint_weight", keep, persistent=False)  # (73,)
        torso = torch.zeros_like(keep)
        torso[joint_index(list(TORSO_JOINTS))] = 1.0
        self.register_buffer("torso_weight", torso, persistent=False)  # (73,)

    # -- pieces ---------------------------------------------------------------------------
    def joints(self, params: SMPLParams) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera-frame joints ``(B, 73, 3)`` of ``params`` and which exist ``(73,)``."""
        joints, _ = self.joints_model(params.global_orient, params.body_pose, params.betas, params.transl)
        return joints, self.joints_model.available

    def _confidence(self, keypoints2d: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        return keypoints2d[..., 2] * self.joint_weight * available.to(keypoints2d.dtype)  # (B, 73)

    def reprojection_loss(self, joints3d: torch.Tensor, keypoints2d: torch.Tensor, intrinsics: torch.Tensor,
                          available: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SPIN's per-sample ``Σ_j c_j² Σ_xy ρ(Δ)`` ``(B,)`` and the confidence-weighted mean
        pixel distance ``(B,)``."""
        conf = self._confidence(keypoints2d, available)  # (B, J)
        residual = project_points(joints3d, intrinsics, min_depth=MIN_DEPTH_M) - keypoints2d[..., :2]  # (B, J, 2)
        loss = (conf ** 2 * gmof(residual, self.config.sigma_px).sum(-1)).sum(-1)
        dist = (conf * residual.norm(dim=-1)).sum(-1) / conf.sum(-1).clamp_min(1e-9)
        return loss, dist

    @torch.no_grad()
    def evaluate(self, params: SMPLParams, keypoints2d: torch.Tensor, intrinsics: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reprojection loss and error (px) of given parameters (e.g. a stored fit), ``(B,)`` each."""
        ref = self.body_model.v_template
        params = params.to(ref.device, ref.dtype)
        joints, available = self.joints(params)
        return self.reprojection_loss(joints, keypoints2d.to(ref), intrinsics.to(ref), available)

    def start_params(self, keypoints2d: torch.Tensor, intrinsics: torch.Tensor,
                     init: SMPLParams | None = None) -> SMPLParams:
        """The start of a fit: ``init`` (default: SPIN's mean pose), translation from the torso
        where ``init`` has none."""
        ref = self.body_model.v_template
        batch = keypoints2d.shape[0]
        start = (mean_smpl_params(batch, dtype=ref.dtype, device=ref.device) if init is None
                 else init.to(ref.device, ref.dtype))
        if init is None or init.transl is None:
            with torch.no_grad():
                joints, available = self.joints(replace(start, transl=None))
                conf = self._confidence(keypoints2d, available)
                kp = torch.cat([keypoints2d[..., :2], conf[..., None]], -1)
                start = replace(start, transl=init_translation(joints, kp, intrinsics))
        return start.detach()

    # -- stages ---------------------------------------------------------------------------
    def _camera_stage(self, p: SMPLParams, keypoints2d: torch.Tensor, intrinsics: torch.Tensor) -> None:
        cfg = self.config
        with torch.no_grad():
            # (B, 73, 3) at identity orientation; SMPL rotates the body about its root (B, 3).
            joints0, root = self.joints_model(torch.zeros_like(p.global_orient), p.body_pose, p.betas)
        conf = self._confidence(keypoints2d, self.joints_model.available) * self.torso_weight  # (B, 73)
        depth0 = p.transl[:, 2].clone()
        p.global_orient.requires_grad_(True)
        p.transl.requires_grad_(True)
        opt = torch.optim.Adam([p.global_orient, p.transl], lr=cfg.lr, betas=(0.9, 0.999))
        for _ in range(cfg.camera_iters):
            joints = _rotate_about(joints0, root, p.global_orient) + p.transl[:, None]
            residual = project_points(joints, intrinsics, min_depth=MIN_DEPTH_M) - keypoints2d[..., :2]  # (B, J, 2)
            loss = (conf ** 2 * (residual ** 2).sum(-1)).sum(-1) + cfg.depth_weight * (p.transl[:, 2] - depth0) ** 2
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()

    def _body_loss(self, p: SMPLParams, keypoints2d: torch.Tensor, intrinsics: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        joints, available = self.joints(p)
        reproj, dist = self.reprojection_loss(joints, keypoints2d, intrinsics, available)
        loss = (reproj + cfg.pose_prior_weight * self.pose_prior(p.body_pose)
                + cfg.angle_prior_weight * angle_prior(p.body_pose) + cfg.shape_prior_weight * shape_prior(p.betas))
        return loss, reproj, dist

    def _body_stage(self, p: SMPLParams, keypoints2d: torch.Tensor, intrinsics: torch.Tensor) -> None:
        tensors = [p.global_orient, p.body_pose, p.betas, p.transl]
        for t in tensors:
            t.requires_grad_(True)
        opt = torch.optim.Adam(tensors, lr=self.config.lr, betas=(0.9, 0.999))
        for _ in range(self.config.body_iters):
            loss, _, _ = self._body_loss(p, keypoints2d, intrinsics)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()

    def forward(self, keypoints2d: torch.Tensor, intrinsics: torch.Tensor,
                init: SMPLParams | None = None) -> SMPLifyResult:
        """Fit ``keypoints2d`` ``(B, 73, 3)`` seen through ``intrinsics`` ``(B, 3, 3)``."""
        ref = self.body_model.v_template
        keypoints2d, intrinsics = keypoints2d.to(ref), intrinsics.to(ref)
        if keypoints2d.ndim != 3 or keypoints2d.shape[1:] != (len(FIT_JOINT_NAMES), 3):
            raise ValueError(f"keypoints2d must be (B, {len(FIT_JOINT_NAMES)}, 3) in FIT_JOINT_NAMES "
                             f"order (see hmr.fitting.camera.fit_keypoints), got {tuple(keypoints2d.shape)}")
        p = self.start_params(keypoints2d, intrinsics, init)
        _, first = self.evaluate(p, keypoints2d, intrinsics)
        with torch.enable_grad():
            self._camera_stage(p, keypoints2d, intrinsics)
            p = p.detach()
            self._body_stage(p, keypoints2d, intrinsics)
            p = p.detach()
        with torch.no_grad():
            loss, reproj, dist = self._body_loss(p, keypoints2d, intrinsics)
        return SMPLifyResult(p, reproj, dist, loss, first)

