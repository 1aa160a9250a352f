"""Fitting problems with exact answers, made with the body model (for tests, the demo and the
numbers quoted in :mod:`hmr.fitting.smplify`).

:func:`make_problem` poses the body with :class:`hmr.synth.poses.PoseSampler` poses and shapes,
stands it upright in front of a pinhole camera (OpenCV axes) like ``hmr.synth`` does, and
projects its 73 fit joints into a square image; :func:`measure` runs SMPLify from the mean
pose on such a problem, in SPIN's 224-px crop frame, and reports 2D and 3D errors
(``python -m hmr.fitting.problems --n 128`` prints them as JSON).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from hmr.core.body import load_body_model
from hmr.core.geometry import procrustes_align, project_points
from hmr.fitting.camera import MIN_DEPTH_M, model_fit_joints, to_crop_frame
from hmr.fitting.prior import load_pose_prior
from hmr.fitting.smplify import SMPLify, SMPLifyConfig, mean_smpl_params
from hmr.synth.poses import PoseSampler, upright_orient

__all__ = ["FitProblem", "make_problem", "joint_errors_mm", "measure"]


@dataclass
class FitProblem:
    global_orient: np.ndarray  # (B, 3)
    body_pose: np.ndarray  # (B, 69)
    betas: np.ndarray  # (B, 10)
    transl: np.ndarray  # (B, 3) m, camera frame
    intrinsics: np.ndarray  # (B, 3, 3) px of the image
    keypoints2d_px: np.ndarray  # (B, 73, 3) image px + confidence, FIT_JOINT_NAMES order
    joints3d_m: np.ndarray  # (B, 24, 3) SMPL joints, camera frame
    bbox_xywh: np.ndarray  # (B, 4) extent of the keypoints
    image_size_px: int


def make_problem(body_model, n: int, seed: int = 0, *, image_size_px: int = 512, tail: float = 5.0,
                 max_yaw: float = np.pi / 2, noise_px: float = 0.0) -> FitProblem:
    """``n`` bodies with exact 2D keypoints (plus Gaussian ``noise_px``) and known SMPL."""
    rng = np.random.default_rng(seed)
    sampled = PoseSampler(tail=tail).sample(rng, n)
    orient = upright_orient(rng, n, max_yaw=max_yaw)
    with torch.no_grad():
        out = body_model(global_orient=torch.from_numpy(orient), body_pose=torch.from_numpy(sampled["body_pose"]),
                         betas=torch.from_numpy(sampled["betas"]))
        joints, available = model_fit_joints(out)  # (B, 73, 3)
    verts = out.vertices.double().numpy()
    focal = rng.uniform(1.6, 2.6, n) * image_size_px
    height = verts[..., 1].max(1) - verts[..., 1].min(1)  # (B,)
    depth = focal * height / (rng.uniform(0.55, 0.85, n) * image_size_px)
    centre = 0.5 * (verts.max(1) + verts.min(1))  # (B, 3)
    shift = rng.uniform(-0.08, 0.08, (n, 2)) * image_size_px * depth[:, None] / focal[:, None]
    transl = np.c_[shift - centre[:, :2], depth - centre[:, 2]]  # (B, 3)
    k = np.zeros((n, 3, 3))
    k[:, 0, 0] = k[:, 1, 1] = focal
    k[:, :2, 2] = (image_size_px - 1) / 2.0
    k[:, 2, 2] = 1.0
    cam_joints = joints.double() + torch.from_numpy(transl)[:, None]
    uv = project_points(cam_joints, torch.from_numpy(k), min_depth=MIN_DEPTH_M).numpy() + rng.normal(0, noise_px, (n, joints.shape[1], 2))
    kp = np.concatenate([uv, np.broadcast_to(available.numpy()[None, :, None], (n, joints.shape[1], 1))], -1)
    lo, hi = uv.min(1), uv.max(1)
    j24 = out.joints_smpl24.double().numpy() + transl[:, None]
    return FitProblem(orient, sampled["body_pose"], sampled["betas"], transl.astype(np.float32),
                      k.astype(np.float32), kp.astype(np.float32), j24.astype(np.float32),
                      np.c_[lo, hi - lo].astype(np.float32), image_size_px)


def joint_errors_mm(pred_m: torch.Tensor, true_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample MPJPE after pelvis alignment and after Procrustes, in mm, for (B, 24, 3)."""
    pred_r = pred_m - pred_m[:, :1]
    true_r = true_m - true_m[:, :1]
    mpjpe = (pred_r - true_r).norm(dim=-1).mean(-1) * 1000
    pa = (procrustes_align(pred_r, true_r) - true_r).norm(dim=-1).mean(-1) * 1000
    return mpjpe, pa


def measure(n: int = 128, seed: int = 0, *, config=None, prior_path=None, noise_px: float = 0.0,
            device: str = "cpu") -> dict[str, float]:
    """Fit a :func:`make_problem` batch from the mean pose; median errors before and after."""
    model = load_body_model(device=device)
    prob = make_problem(model.cpu(), n, seed, noise_px=noise_px)
    model.to(device)
    kp, k_crop, frame = to_crop_frame(prob.keypoints2d_px, prob.bbox_xywh, prob.intrinsics)
    fitter = SMPLify(model, load_pose_prior(prior_path), config)
    kp_t, k_t = torch.from_numpy(kp).to(device), torch.from_numpy(k_crop).to(device)
    t0 = time.perf_counter()
    result = fitter(kp_t, k_t)
    seconds = time.perf_counter() - t0
    start = mean_smpl_params(n, device=device)
    start.transl = fitter.start_params(kp_t, k_t).transl
    with torch.no_grad():
        fit_j = model(**vars(result.params)).joints_smpl24.cpu()
        start_j = model(**vars(start)).joints_smpl24.cpu()
    true_j = torch.from_numpy(prob.joints3d_m)
    px = 1.0 / torch.from_numpy(frame.scale).float()  # image px per crop px
    before = joint_errors_mm(start_j, true_j)
    after = joint_errors_mm(fit_j, true_j)
    return {
        "samples": n, "seconds": round(seconds, 2),
        "reproj_px_start": float((result.initial_reprojection_error_px.cpu() * px).median()),
        "reproj_px_fit": float((result.reprojection_error_px.cpu() * px).median()),
        "mpjpe_mm_start": float(before[0].median()), "mpjpe_mm_fit": float(after[0].median()),
        "pa_mpjpe_mm_start": float(before[1].median()), "pa_mpjpe_mm_fit": float(after[1].median()),
        "transl_err_mm_fit": float(((result.params.transl.cpu() - torch.from_numpy(prob.transl)).norm(dim=-1)
                                    * 1000).median()),
    }


def _main() -> None:
    import argparse
    import json

    p = argparse.ArgumentParser(description="SMPLify from the mean pose on mannequin samples with known SMPL")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--camera-iters", type=int, default=100)
    p.add_argument("--body-iters", type=int, default=100)
    p.add_argument("--noise-px", type=float, default=0.0, help="Gaussian noise on the 2D keypoints (image px)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--pose-prior", default=None)
    a = p.parse_args()
    cfg = SMPLifyConfig(camera_iters=a.camera_iters, body_iters=a.body_iters)
    print(json.dumps(measure(a.n, a.seed, config=cfg, prior_path=a.pose_prior, noise_px=a.noise_px,
                             device=a.device), indent=1))


if __name__ == "__main__":
    _main()
