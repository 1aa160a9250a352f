"""Label-consistent augmentations: ``CropSample -> CropSample`` functions.

The geometric stage draws flip, rotation, scale, translation jitter and the benchmark's
random crop, composes them into ONE similarity affine from the stored crop to the output
crop, and warps the pixels once. Labels follow the same affine:

- 2D keypoints: ``p' = A p``; on a flip, joints are re-ordered with the convention's flip
  permutation (left ↔ right).
- Camera: ``A3 · K = K' · Rz`` (see :mod:`hmr.core.crop`): 3D keypoints and the SMPL root
  rotate by ``Rz`` about the optical axis, ``K'`` is the output-crop camera. A flip mirrors
  the camera frame (``x → -x``) and sets ``c'x → S - 1 - c'x``.
- SMPL: global orient ``R' = Rz R`` (then mirrored); body pose flipped with SMPL's left/right
  pairs and the y, z axis-angle components negated (the HMR / SPIN rule).
- SMPL translation: SMPL rotates about the pelvis rest position ``j0(β)``, not the camera
  origin, so ``t' = Rz (j0 + t) - j0``. That needs ``j0(β)`` (:class:`SmplRootModel`, built
  from the body model's arrays). Without it a rotated sample gets ``has_smpl_transl=False``
  and a flip uses ``j0 ≈ 0`` (a ~4 mm error for SMPL's neutral body).

Defaults follow SPIN and the hmr-benchmarks configs (``GetRandomScaleRotation(rot_factor=30,
scale_factor=0.25)``, ``RandomHorizontalFlip(flip_prob=0.5)``, ``RandomChannelNoise(0.4)``,
``RandomCrop(crop_prob=0.8, crop_factor=0.4, axis='y')`` when enabled).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hmr.core import crop as geo
from loaders.sample import CropSample

# SMPL's 24 joints: pelvis, L_hip, R_hip, spine1, L_knee, R_knee, spine2, L_ankle, R_ankle,
# spine3, L_foot, R_foot, neck, L_collar, R_collar, head, L_shoulder, R_shoulder, L_elbow,
# R_elbow, L_wrist, R_wrist, L_hand, R_hand.
SMPL_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23))
MIRROR = np.diag([-1.0, 1.0, 1.0])


def smpl_flip_permutation() -> np.ndarray:
    """(24,) int64: joint i of the flipped body takes joint perm[i] of the original."""
    perm = np.arange(24)
    for a, b in SMPL_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


_SMPL_PERM = smpl_flip_permutation()


def flip_smpl_pose(global_orient_aa: np.ndarray, body_pose_aa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an SMPL pose in the camera's x axis.

    global_orient_aa (..., 3), body_pose_aa (..., 69) axis-angle → same shapes. Mirroring a
    rotation ``R(ω)`` by ``M = diag(-1, 1, 1)`` gives ``M R M = R((ωx, -ωy, -ωz))``; joints
    swap left/right.
    """
    full = np.concatenate([global_orient_aa, body_pose_aa], axis=-1)  # (..., 72)
    full = full.reshape(*full.shape[:-1], 24, 3)[..., _SMPL_PERM, :].copy()  # (..., 24, 3)
    full[..., 1:] *= -1.0
    full = full.reshape(*full.shape[:-2], 72)
    return full[..., :3], full[..., 3:]


@dataclass(frozen=True)
class SmplRootModel:
    """Pelvis rest position as a linear function of shape: ``j0(β) = offset + dirs @ β``."""

    offset_m: np.ndarray   # (3,)
    dirs_m: np.ndarray     # (3, B)

    @classmethod
    def from_body_model(cls, v_template: np.ndarray, shapedirs: np.ndarray,
                        j_regressor: np.ndarray) -> "SmplRootModel":
        """From SMPL arrays: v_template (V, 3), shapedirs (V, 3, B), J_regressor (J, V)."""
        row = np.asarray(j_regressor, dtype=np.float64)[0]  # (V,)
        offset = row @ np.asarray(v_template, dtype=np.float64)  # (3,)
        dirs = np.einsum("v,vcb->cb", row, np.asarray(shapedirs, dtype=np.float64))  # (3, B)
        return cls(offset, dirs)

    def __call__(self, betas: np.ndarray) -> np.ndarray:
        b = np.asarray(betas, dtype=np.float64)[: self.dirs_m.shape[1]]
        return self.offset_m + self.dirs_m[:, : len(b)] @ b  # (3,)


@dataclass
class AugmentConfig:
    """Geometric and colour augmentations. A probability / factor of 0 switches one off."""

    flip_prob: float = 0.5
    rotation_prob: float = 0.6         # SPIN / mmhuman3d: rotate 60% of samples
    rotation_std_deg: float = 30.0     # rot ~ clip(N(0, 30°), ±60°)
    scale_std: float = 0.25            # s ~ clip(1 + N(0, 0.25), 0.75, 1.25)
    translate_frac: float = 0.0        # centre jitter, uniform ±frac of the box side
    random_crop_prob: float = 0.0      # benchmark "random crop": 0.8 when enabled
    random_crop_factor: float = 0.4
    channel_noise: float = 0.4         # multiply each channel by U(1 - f, 1 + f)


@dataclass(frozen=True)
class GeometricDraw:
    flip: bool
    rotation_deg: float
    scale: float
    shift_frac: tuple[float, float]
    crop_keep: float          # fraction of the box side kept by random crop (1 = none)
    crop_offset_frac: float   # vertical offset of the kept part, fraction of the box side


def draw_geometry(cfg: AugmentConfig, rng: np.random.Generator) -> GeometricDraw:
    flip = bool(rng.random() < cfg.flip_prob)
    rot = 0.0
    if cfg.rotation_std_deg > 0 and rng.random() < cfg.rotation_prob:
        rot = _clip(rng.normal() * cfg.rotation_std_deg, -2 * cfg.rotation_std_deg, 2 * cfg.rotation_std_deg)
    scale = _clip(1.0 + rng.normal() * cfg.scale_std, 1.0 - cfg.scale_std, 1.0 + cfg.scale_std)
    shift = tuple(float(v) for v in rng.uniform(-cfg.translate_frac, cfg.translate_frac, 2))
    keep, offset = 1.0, 0.0
    if cfg.random_crop_prob > 0 and rng.random() < cfg.random_crop_prob:
        keep = 1.0 - cfg.random_crop_factor
        offset = float((rng.random() - 0.5) * (1.0 - keep))  # axis='y': slide vertically
    return GeometricDraw(flip, rot, scale, shift, keep, offset)


def _clip(value: float, low: float, high: float) -> float:
    """``float(np.clip(value, low, high))`` for one number, without numpy's per-call cost."""
    return float(min(max(value, low), high))


def identity_geometry() -> GeometricDraw:
    return GeometricDraw(False, 0.0, 1.0, (0.0, 0.0), 1.0, 0.0)


def geometric_affine(sample: CropSample, draw: GeometricDraw, out_size: int) -> np.ndarray:
    """(2, 3) affine from ``sample.image`` pixels to the output crop, flip excluded."""
    side = sample.box_side_px
    center = np.asarray(sample.box_center_px, dtype=np.float64) + np.asarray(draw.shift_frac) * side
    center = center + np.array([0.0, draw.crop_offset_frac * side])
    return geo.square_affine(center, side * draw.scale * draw.crop_keep, out_size, draw.rotation_deg)


def transform_sample(sample: CropSample, affine: np.ndarray, out_size: int, flip: bool,
                     flip_perm: np.ndarray, root: SmplRootModel | None = None) -> CropSample:
    """Warp pixels and labels by an unmirrored similarity ``affine``, then mirror if ``flip``."""
    # The mirror is folded into the warp: one pass over the pixels, no flipped copy.
    # No pixels in device-decode mode (image None): loaders.device_decode warps them there.
    image = (geo.warp(sample.image, pixel_affine(affine, flip, out_size), out_size)
             if sample.image is not None else None)
    kp2 = sample.keypoints2d_px.astype(np.float64).copy()
    kp2[:, :2] = geo.apply_points(affine, kp2[:, :2])
    scale, rot2, _ = geo.similarity_parts(affine)
    rz = np.eye(3)
    rz[:2, :2] = rot2
    kp3 = sample.keypoints3d_m.astype(np.float64).copy()
    kp3[:, :3] = kp3[:, :3] @ rz.T
    k_new = sample.cam_intrinsics
    if sample.has_intrinsics:
        k_new, _ = geo.transform_intrinsics(affine, sample.cam_intrinsics)
    orient = _rotate_aa(rz, sample.smpl_global_orient)
    pose = np.asarray(sample.smpl_body_pose, dtype=np.float64)
    # np.allclose(rz, I) (rtol 1e-5, atol 1e-8) on the four entries that can differ, as scalars
    (c00, c01), (c10, c11) = rot2.tolist()
    rotated = not (abs(c00 - 1.0) <= 1e-8 + 1e-5 and abs(c01) <= 1e-8 and abs(c10) <= 1e-8
                   and abs(c11 - 1.0) <= 1e-8 + 1e-5)
    transl, has_transl = _move_transl(sample, rz, root, rotated)
    to_image = geo.compose((geo.invert(affine), sample.crop_to_image))
    if flip:
        kp2[:, 0] = out_size - 1.0 - kp2[:, 0]
        kp2 = kp2[flip_perm]
        kp3[:, 0] *= -1.0
        kp3 = kp3[flip_perm]
        if sample.has_intrinsics:
            k_new = k_new.copy()
            k_new[0, 2] = out_size - 1.0 - k_new[0, 2]
        orient, pose = flip_smpl_pose(orient, pose)
        transl = _mirror_transl(transl, sample.smpl_betas, root)
        to_image = geo.compose((geo.flip_affine(out_size), to_image))
    centre = np.array([out_size / 2.0 - 0.5] * 2)
    aug_rotation, aug_flip = compose_frame_change(sample.aug_rotation, sample.aug_flip, rz, flip)
    return sample.replace(
        aug_rotation=aug_rotation, aug_flip=aug_flip,
        image=image, keypoints2d_px=kp2.astype(np.float32), keypoints3d_m=kp3.astype(np.float32),
        cam_intrinsics=np.asarray(k_new, dtype=np.float64), smpl_global_orient=orient.astype(np.float32),
        smpl_body_pose=np.asarray(pose, dtype=np.float32), smpl_transl=np.asarray(transl, np.float32),
        has_smpl_transl=has_transl, crop_to_image=to_image, box_center_px=centre,
        box_side_px=sample.box_side_px * scale)


def pixel_affine(affine: np.ndarray, flip: bool, out_size: int) -> np.ndarray:
    """(2, 3) map of the pixels from ``sample.image`` to the output crop: the similarity
    ``affine``, then the mirror when ``flip`` (what :func:`transform_sample` warps with)."""
    return geo.compose((affine, geo.flip_affine(out_size))) if flip else affine


def compose_frame_change(rotation: np.ndarray, flip: bool, rz: np.ndarray, new_flip: bool
                         ) -> tuple[np.ndarray, bool]:
    """The frame change ``M^f · R`` (stored crop → this sample) followed by ``M^f2 · Rz``, in the
    same form: ``M^f2 Rz M^f R = M^(f xor f2) · (M^f Rz M^f) R``, and ``M Rz M = Rzᵀ`` for a
    rotation about the optical axis. Returns ``(rotation (3, 3), flip)``."""
    rz = np.asarray(rz, dtype=np.float64)
    if flip:
        rz = MIRROR @ rz @ MIRROR
    return rz @ np.asarray(rotation, dtype=np.float64), bool(flip) ^ bool(new_flip)


def _rotate_aa(rot: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of ``rot @ R(aa)``."""
    r_aa, _ = cv2.Rodrigues(np.asarray(aa, dtype=np.float64).reshape(3, 1))
    out, _ = cv2.Rodrigues(rot @ r_aa)
    return out.reshape(3)


def _move_transl(sample: CropSample, rz: np.ndarray, root: SmplRootModel | None,
                 rotated: bool) -> tuple[np.ndarray, bool]:
    t = np.asarray(sample.smpl_transl, dtype=np.float64)
    if not sample.has_smpl_transl or not rotated:
        return t, sample.has_smpl_transl
    if root is None:
        return np.zeros(3), False
    j0 = root(sample.smpl_betas)
    return rz @ (j0 + t) - j0, True


def _mirror_transl(t: np.ndarray, betas: np.ndarray, root: SmplRootModel | None) -> np.ndarray:
    j0 = root(betas) if root is not None else np.zeros(3)
    return MIRROR @ (j0 + t) - j0


def geometric_augment(sample: CropSample, cfg: AugmentConfig, rng: np.random.Generator,
                      out_size: int, flip_perm: np.ndarray,
                      root: SmplRootModel | None = None) -> CropSample:
    """Draw and apply the geometric augmentations (one warp)."""
    return geometric_augment_map(sample, cfg, rng, out_size, flip_perm, root)[0]


def geometric_augment_map(sample: CropSample, cfg: AugmentConfig, rng: np.random.Generator,
                          out_size: int, flip_perm: np.ndarray,
                          root: SmplRootModel | None = None) -> tuple[CropSample, np.ndarray]:
    """:func:`geometric_augment` and its pixel map (2, 3), stored crop → output crop
    (:func:`pixel_affine`; what device decoding warps with)."""
    draw = draw_geometry(cfg, rng)
    affine = geometric_affine(sample, draw, out_size)
    return (transform_sample(sample, affine, out_size, draw.flip, flip_perm, root),
            pixel_affine(affine, draw.flip, out_size))


def channel_gains(factor: float, rng: np.random.Generator) -> np.ndarray:
    """(3,) per-channel gains U(1 - factor, 1 + factor) (SPIN's RandomChannelNoise); ones if off."""
    if factor <= 0:
        return np.ones(3)
    return rng.uniform(1.0 - factor, 1.0 + factor, 3)


def channel_noise(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8, each channel multiplied by U(1 - factor, 1 + factor), clipped."""
    lut = np.clip(np.arange(256.0)[:, None] * channel_gains(factor, rng)[None, :], 0, 255)  # (256, 3)
    return cv2.LUT(np.ascontiguousarray(image), lut.round().astype(np.uint8).reshape(256, 1, 3))

