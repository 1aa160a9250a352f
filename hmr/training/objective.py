"""The HMR/SPIN training objective, each term's loss selectable by name.

Given the network output, the body model's output for it and a loader batch::

    total = scale × ( w2d · L(kp2d_pred, kp2d_gt; conf)          2D keypoints, [-1, 1] crop coords
                    + w3d · L(kp3d_pred − pelvis, kp3d_gt − pelvis; conf)   metres
                    + wpose · L(R_pred, R_gt; has_smpl)           24 rotation matrices
                    + wbetas · L(β_pred, β_gt; has_smpl)
                    + wcam · mean(exp(−10 s)²) )                  weak-perspective scale prior

- ``L`` is ``mse`` / ``l1`` (SPIN-style means: keypoints averaged over all entries with the
  confidence as weight, SMPL terms averaged over samples that have SMPL) or a Balanced MSE
  loss ``bmc`` / ``bni`` / ``gai`` on the flattened per-sample vector, absent entries zeroed in
  both prediction and target and a per-sample weight (any label present). ``gai``/``bni``
  need a label distribution: pass ``label_dists={"pose": {...}}`` (kwargs for :func:`hmr.losses.build_loss`).
- 2D keypoints are predicted by projecting the joints, translated by the camera's ``cam_t``,
  with the crop camera (focal ``model.focal_length_px``, principal point at the crop centre)
  and dividing by half the crop size (SPIN). With ``loss.focal_from_intrinsics`` a sample
  whose camera is known (``has_intrinsics``) is projected with its own focal length in crop
  pixels, the weak-perspective camera turned into a depth with that focal; the principal
  point stays at the crop centre (the network cannot see where the image centre is).
- The pelvis for the 3D term is the mid-point of the hips, in prediction and ground truth
  (SPIN); samples whose GT hips are not both labelled get no 3D loss.
- Keypoint confidences are multiplied by ``loss.openpose_weight`` for OpenPose-detector joints
  (names ``*_openpose``; SPIN: 0) and by 1 for annotated joints.
"""

from __future__ import annotations

import torch
from torch import nn

from hmr.core.geometry import axis_angle_to_matrix, perspective_projection, weak_perspective_to_translation
from hmr.core.keypoints import convert_keypoints, get_convention
from hmr.losses import build_loss
from hmr.training.config import LossConfig

BALANCED = ("bmc", "bni", "gai")
# body-model output attribute holding joints in a keypoint convention
JOINTS_ATTR = {"spin_49": "joints_spin49", "h36m": "joints_h36m17", "smpl": "joints_smpl24",
               "smpl_45": "joints_smpl45"}


def predicted_joints(body_out, convention: str) -> torch.Tensor:
    """Joints ``(B, K, 3)`` of the body-model output in ``convention``."""
    attr = JOINTS_ATTR.get(convention)
    if attr is not None and getattr(body_out, attr, None) is not None:
        return getattr(body_out, attr)

    joints, _ = convert_keypoints(body_out.joints_spin49, "spin_49", convention)
    return joints


class Objective(nn.Module):
    """``forward(out, body_out, batch) -> (total, {term: value})``."""

    def __init__(self, config: LossConfig, convention: str, *, focal_length_px: float, crop_px: int,
                 label_dists: dict[str, dict] | None = None):
        super().__init__()

        conv = get_convention(convention)
        self.config, self.convention = config, conv.name
        self.focal_length_px, self.crop_px = float(focal_length_px), int(crop_px)
        self.hips = [conv.index("left_hip"), conv.index("right_hip")]
        joint_weight = [config.openpose_weight if n.endswith("_openpose") else 1.0 for n in conv.joint_names]
        self.register_buffer("joint_weight", torch.tensor(joint_weight)[None, :, None], persistent=False)  # (1, K, 1)
        dims = {"keypoints2d": conv.num_joints * 2, "keypoints3d": conv.num_joints * 3, "pose": 24 * 9,
                "betas": 10}
        label_dists = label_dists or {}
        self.terms = nn.ModuleDict()
        for term, dim in dims.items():
            kind = getattr(config, term)
            extra = dict(label_dists.get(term, {}))
            if kind in BALANCED:
                extra.update(dim=dim, init_noise_sigma=config.noise_sigma, learnable_sigma=config.learnable_sigma)
            else:
                extra["reduction"] = "weighted_mean" if term in ("pose", "betas") else "mean"
            self.terms[term] = build_loss(kind, **extra)

    def sigma_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n.endswith("noise_sigma")]

    def _term(self, term: str, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``weight`` broadcasts to ``pred`` (B, ...); balanced losses get a per-sample weight."""
        loss = self.terms[term]
        if getattr(self.config, term) not in BALANCED:
            return loss(pred, target, weight)
        w = weight.expand_as(pred).to(pred.dtype)
        per_sample = (w.flatten(1) > 0).any(dim=1).to(pred.dtype)  # (B,)
        return loss((pred * w).flatten(1), (target * w).flatten(1), per_sample)

    def _sample_focal(self, batch: dict, like: torch.Tensor) -> torch.Tensor:
        """(B,) focal length in crop pixels: the sample's mean of fx, fy where its camera is
        known, else ``model.focal_length_px``."""
        k = batch["cam_intrinsics"].to(like)  # (B, 3, 3), crop pixels
        known = batch["has_intrinsics"].to(like.device).bool() & (k[:, 0, 0] > 0) & (k[:, 1, 1] > 0)
        return torch.where(known, 0.5 * (k[:, 0, 0] + k[:, 1, 1]), torch.full_like(k[:, 0, 0], self.focal_length_px))

    def forward(self, out, body_out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        joints = predicted_joints(body_out, self.convention).float()  # (B, K, 3)
        # 2D: project with the crop camera, to [-1, 1] crop coordinates
        kp2d_gt = batch["keypoints2d"].float()  # (B, K, 3)
        focal, cam_t = self.focal_length_px, out.cam_t.float()
        if c.focal_from_intrinsics:
            focal = self._sample_focal(batch, joints)  # (B,)
            cam_t = weak_perspective_to_translation(out.cam.float(), focal, self.crop_px)
        kp2d_pred = perspective_projection(joints, focal, 0.0, translation=cam_t) / (self.crop_px / 2.0)
        loss_2d = self._term("keypoints2d", kp2d_pred, kp2d_gt[..., :2], kp2d_gt[..., 2:3] * self.joint_weight)
        # 3D: pelvis (mid-hip) aligned, metres
        kp3d_gt = batch["keypoints3d"].float()  # (B, K, 4)
        hips_ok = (kp3d_gt[:, self.hips, 3] > 0).all(dim=1).float()[:, None, None]  # (B, 1, 1)
        gt_rel = kp3d_gt[..., :3] - kp3d_gt[:, self.hips, :3].mean(dim=1, keepdim=True)
        pred_rel = joints - joints[:, self.hips].mean(dim=1, keepdim=True)
        loss_3d = self._term("keypoints3d", pred_rel, gt_rel, kp3d_gt[..., 3:4] * hips_ok * self.joint_weight)
        # SMPL parameters where has_smpl
        has_smpl = batch["has_smpl"].float()  # (B,)
        gt_aa = torch.cat([batch["smpl_global_orient"], batch["smpl_body_pose"]], dim=1).float()
        gt_rot = axis_angle_to_matrix(gt_aa.reshape(-1, 24, 3))  # (B, 24, 3, 3)
        loss_pose = self._term("pose", out.pose_rotmat.float(), gt_rot, has_smpl[:, None, None, None])
        loss_betas = self._term("betas", out.betas.float(), batch["smpl_betas"].float(), has_smpl[:, None])
        loss_cam = torch.exp(-10.0 * out.cam[:, 0].float()).pow(2).mean()
        total = c.scale * (c.weight_keypoints2d * loss_2d + c.weight_keypoints3d * loss_3d
                           + c.weight_pose * loss_pose + c.weight_betas * loss_betas + c.weight_cam * loss_cam)
        terms = {"loss": total, "loss_keypoints2d": loss_2d, "loss_keypoints3d": loss_3d,
                 "loss_pose": loss_pose, "loss_betas": loss_betas, "loss_cam": loss_cam}
        for name, p in self.named_parameters():
            if name.endswith("noise_sigma"):
                terms[f"sigma/{name.split('.')[1]}"] = p.detach()
        return total, terms
