"""Pose and shape sampling with a controllable long tail.

Every sample draws a *rarity* t in [0, 1] from a truncated exponential (``tail``: larger =
heavier tail): t near 0 gives a near-standing pose (arms down, small natural variation),
t near 1 moves every joint towards a random extreme of its range (deep squats, raised arms,
bends, twists). Balanced MSE needs exactly this: many common poses, few rare ones, and a
test set on which the rare ones are not rare.

Joint angles are axis-angle in SMPL's local joint frames (SMPL rest pose: T-pose, y up,
body facing +z, body's left at +x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# SMPL joint indices (0 = pelvis); body_pose covers joints 1..23.
L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = 1, 2, 3, 4, 5, 6, 7, 8, 9
NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW = 12, 13, 14, 15, 16, 17, 18, 19
L_WRIST, R_WRIST = 20, 21

# The standing pose (rarity 0): arms lowered from the T-pose, a slight elbow bend.
_STANDING = {L_SHOULDER: (0.0, 0.0, -1.25), R_SHOULDER: (0.0, 0.0, 1.25),
             L_ELBOW: (0.0, -0.15, 0.0), R_ELBOW: (0.0, 0.15, 0.0)}

# Per joint: (low, high) of each axis-angle component at the extreme of the tail.
# Chosen for plausibility, not anatomy-exactness: knees bend one way, elbows one way.
_EXTREMES = {
    L_HIP: ((-2.0, 0.5), (-0.4, 0.4), (-0.2, 0.9)), R_HIP: ((-2.0, 0.5), (-0.4, 0.4), (-0.9, 0.2)),
    L_KNEE: ((0.0, 2.3), (0, 0), (0, 0)), R_KNEE: ((0.0, 2.3), (0, 0), (0, 0)),
    L_ANKLE: ((-0.4, 0.6), (-0.2, 0.2), (-0.2, 0.2)), R_ANKLE: ((-0.4, 0.6), (-0.2, 0.2), (-0.2, 0.2)),
    SPINE1: ((-0.2, 0.7), (-0.4, 0.4), (-0.3, 0.3)), SPINE2: ((-0.1, 0.4), (-0.3, 0.3), (-0.2, 0.2)),
    SPINE3: ((-0.1, 0.3), (-0.3, 0.3), (-0.2, 0.2)), NECK: ((-0.3, 0.5), (-0.5, 0.5), (-0.3, 0.3)),
    HEAD: ((-0.3, 0.4), (-0.4, 0.4), (-0.2, 0.2)),
    L_SHOULDER: ((-1.2, 1.2), (-1.0, 1.0), (-1.3, 1.2)), R_SHOULDER: ((-1.2, 1.2), (-1.0, 1.0), (-1.2, 1.3)),
    L_ELBOW: ((0, 0), (-2.3, 0.0), (0, 0)), R_ELBOW: ((0, 0), (0.0, 2.3), (0, 0)),
    L_WRIST: ((-0.5, 0.5), (-0.3, 0.3), (-0.6, 0.6)), R_WRIST: ((-0.5, 0.5), (-0.3, 0.3), (-0.6, 0.6)),
}


@dataclass(frozen=True)
class PoseSampler:
    """Long-tailed SMPL pose/shape sampler.

    tail: rate of the exponential the rarity is drawn from (rarity = min(Exp(1)/tail... )):
    ``tail=5`` puts ~80% of samples below rarity 0.3; ``tail=0`` draws rarity uniformly
    (a balanced set, e.g. for testing). noise: std (rad) of natural variation per joint.
    """

    tail: float = 5.0
    noise: float = 0.08
    beta_std: float = 1.0
    beta_clip: float = 2.5

    def rarity(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.tail <= 0:
            return rng.uniform(0, 1, n)
        # Exponential truncated to [0, 1] by inverse CDF.
        u = rng.uniform(0, 1, n)
        return -np.log1p(-u * (1 - np.exp(-self.tail))) / self.tail

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Returns body_pose (n, 69), betas (n, 10), rarity (n,)."""
        t = self.rarity(rng, n)  # (n,)
        pose = np.zeros((n, 24, 3))
        for j, aa in _STANDING.items():
            pose[:, j] = aa
        for j, ranges in _EXTREMES.items():
            lo, hi = np.array(ranges, dtype=float).T  # (3,), (3,)
            extreme = rng.uniform(lo, hi, size=(n, 3))  # a random target at the far end
            pose[:, j] = (1 - t[:, None]) * pose[:, j] + t[:, None] * extreme
        pose[:, 1:] += rng.normal(0, self.noise, size=(n, 23, 3))
        betas = np.clip(rng.normal(0, self.beta_std, size=(n, 10)), -self.beta_clip, self.beta_clip)
        return {"body_pose": pose[:, 1:].reshape(n, 69).astype(np.float32),
                "betas": betas.astype(np.float32), "rarity": t.astype(np.float32)}


def upright_orient(rng: np.random.Generator, n: int, *, max_yaw: float = np.pi,
                   max_tilt: float = 0.15) -> np.ndarray:
    """Global orientations (n, 3) axis-angle that stand SMPL's body upright in the camera
    frame (y down, z forward) facing the camera, then turn it by a random yaw about the
    vertical axis and tilt it slightly."""
    from scipy.spatial.transform import Rotation

    flip = Rotation.from_rotvec([np.pi, 0.0, 0.0])  # SMPL y-up, facing +z -> y-down, facing -z
    yaw = Rotation.from_rotvec(np.c_[np.zeros(n), rng.uniform(-max_yaw, max_yaw, n), np.zeros(n)])
    tilt = Rotation.from_rotvec(np.c_[rng.uniform(-max_tilt, max_tilt, n), np.zeros(n),
                                      rng.uniform(-max_tilt, max_tilt, n)])
    return (tilt * yaw * flip).as_rotvec().astype(np.float32)
