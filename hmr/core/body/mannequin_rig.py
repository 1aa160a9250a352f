"""Rig of the mannequin: skinning weights, joint regressors, shape and pose blend shapes.

Everything is a pure function of the rest mesh (:mod:`hmr.core.body.mannequin_mesh`), so the
model is deterministic. Shapes follow SMPL: weights (V, 24), J_regressor (24, V),
shapedirs (V, 3, 10), posedirs (V, 3, 207), with V = 6890.

Skinning: every vertex belongs to a part (torso, a leg, an arm, the head) and has a coordinate
along that part's chain of joints (arclength on limbs, height on torso and head). Weights
switch from a bone to the next one at the joint between them with a smoothstep of half-width
``h``; on the upper torso a lateral blend hands vertices to the collars and shoulders. So
bending an elbow moves the forearm, the hand and the upper arm within ``h`` of the elbow only.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from hmr.core.body.joint_names import SMPL24_PARENTS
from hmr.core.body.mannequin_mesh import (PART_ARM_L, PART_ARM_R, PART_HEAD, PART_LEG_L, PART_LEG_R,
                                     PART_TORSO, MannequinMesh, leg_centreline, rest_joints)

N_JOINTS = 24
N_BETAS = 10


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smoothstep from 0 at ``lo`` to 1 at ``hi`` (works for lo > hi too)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _chain_weights(t: np.ndarray, joints: list[int], bounds: list[float], halfwidths: list[float]
                   ) -> np.ndarray:
    """(N, 24) weights along a chain: bone ``joints[k]`` owns t in [bounds[k-1], bounds[k]).

    The switch at ``bounds[k]`` is a smoothstep over +-``halfwidths[k]``; weights sum to 1.
    """
    w = np.zeros((len(t), N_JOINTS))
    above = [np.ones_like(t)] + [_ramp(t, b - h, b + h) for b, h in zip(bounds, halfwidths)]
    above.append(np.zeros_like(t))
    for k, j in enumerate(joints):
        w[:, j] += above[k] - above[k + 1]
    return w


def _leg_joint_arclength(sign: float, joints: np.ndarray, ids: list[int]) -> list[float]:
    line = leg_centreline(sign)
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    return [float(s[np.argmin(np.linalg.norm(line - joints[j], axis=1))]) for j in ids]


def skinning_weights(mesh: MannequinMesh) -> np.ndarray:
    """(V, 24) linear-blend-skinning weights, rows >= 0 summing to 1."""
    v, part, s = mesh.vertices, mesh.part, mesh.arclen
    joints = rest_joints()
    w = np.zeros((len(v), N_JOINTS))
    for sign, pid, (hip, knee, ankle, foot) in ((1, PART_LEG_L, (1, 4, 7, 10)), (-1, PART_LEG_R, (2, 5, 8, 11))):
        m = part == pid
        _, s_knee, s_ankle, s_foot = _leg_joint_arclength(sign, joints, [hip, knee, ankle, foot])
        w[m] = _chain_weights(s[m], [0, hip, knee, ankle, foot], [0.0, s_knee, s_ankle, s_foot],
                              [0.07, 0.05, 0.035, 0.025])
    for pid, (collar, sho, elb, wri, hand) in ((PART_ARM_L, (13, 16, 18, 20, 22)), (PART_ARM_R, (14, 17, 19, 21, 23))):
        m = part == pid
        x = np.abs(v[m, 0])
        bounds = [abs(joints[j, 0]) for j in (sho, elb, wri, hand)]
        w[m] = _chain_weights(x, [collar, sho, elb, wri, hand], bounds, [0.04, 0.045, 0.03, 0.025])
    m = part == PART_HEAD
    w[m] = _chain_weights(v[m, 1], [9, 12, 15], [joints[12, 1], joints[15, 1]], [0.035, 0.03])
    w[part == PART_TORSO] = _torso_weights(v[part == PART_TORSO], joints)
    return w


def _torso_weights(v: np.ndarray, joints: np.ndarray) -> np.ndarray:
    y, ax = v[:, 1], np.abs(v[:, 0])
    spine = _chain_weights(y, [0, 3, 6, 9, 12], [joints[3, 1], joints[6, 1], joints[9, 1], joints[12, 1]],
                           [0.05, 0.05, 0.03, 0.03])
    left = v[:, 0] > 0
    # Lower torso beside the thigh roots follows the hips partly.
    hip = 0.5 * _ramp(y, -0.29, -0.372) * _ramp(ax, 0.02, 0.10)
    hip_w = np.zeros_like(spine)
    hip_w[np.arange(len(v)), np.where(left, 1, 2)] = 1.0
    # Upper lateral torso follows the collar, and next to the arm hole the shoulder.
    collar = _ramp(ax, 0.05, 0.12) * _ramp(y, 0.09, 0.17)
    shoulder = _ramp(ax, 0.135, 0.175) * _ramp(y, 0.13, 0.19)
    arm_w = np.zeros_like(spine)
    rows = np.arange(len(v))
    arm_w[rows, np.where(left, 13, 14)] = 1 - shoulder
    arm_w[rows, np.where(left, 16, 17)] = shoulder
    w = spine * (1 - hip - collar)[:, None] + hip[:, None] * hip_w + collar[:, None] * arm_w
    return w


# ---------------------------------------------------------------- regressors
def fit_regressor(vertices: np.ndarray, targets: np.ndarray, radius0: float = 0.03,
                  tol_m: float = 0.002) -> np.ndarray:
    """(T, V) non-negative rows summing to 1 with ``row @ vertices`` ~= target.

    For each target, vertices within a growing ball are combined (non-negative least squares,
    pulled towards uniform weights so that joints follow the surface smoothly under shape).
    """
    out = np.zeros((len(targets), len(vertices)))
    for t, target in enumerate(targets):
        radius = radius0
        while True:
            idx = np.flatnonzero(np.linalg.norm(vertices - target, axis=1) < radius)
            if len(idx) >= 8:
                w = _nnls_row(vertices[idx], target)
                if np.linalg.norm(w @ vertices[idx] - target) < tol_m:
                    break
            radius *= 1.25
            if radius > 0.5:
                raise RuntimeError(f"cannot regress target {t} at {target}")
        out[t, idx] = w
    out[out < 1e-7] = 0.0
    return out / out.sum(axis=1, keepdims=True)


def _nnls_row(local: np.ndarray, target: np.ndarray, reg: float = 3e-3) -> np.ndarray:
    n = len(local)
    a = np.concatenate([local.T, 10.0 * np.ones((1, n)), reg * np.eye(n)])
    b = np.concatenate([target, [10.0], reg * np.full(n, 1.0 / n)])
    w, _ = nnls(a, b, maxiter=50 * n)
    return w / w.sum()


def extra9_targets(joints: np.ndarray) -> np.ndarray:
    """Rest positions of SPIN's 9 extra joints (see EXTRA9_JOINT_NAMES)."""
    return np.array([
        (-0.100, -0.345, 0.005), (0.100, -0.345, 0.005),  # LSP hips: lower and more lateral
        (0.0, 0.330, -0.012), (0.0, 0.552, 0.018),  # LSP neck, top of head
        (0.0, -0.345, 0.005), (0.0, 0.255, -0.005),  # MPII pelvis, thorax
        (0.0, 0.000, -0.020), (0.0, 0.392, 0.060), (0.0, 0.470, 0.020),  # H36M spine, jaw, head
    ])


def h36m17_targets(joints: np.ndarray) -> np.ndarray:
    """Rest positions of the 17 H36M joints in SPIN's row order (see H36M17_JOINT_NAMES)."""
    j = joints
    lhip, rhip = (0.098, -0.325, 0.005), (-0.098, -0.325, 0.005)
    return np.array([
        (0.0, -0.300, 0.005), lhip, j[4], j[7] + (0, -0.01, 0), rhip, j[5], j[8] + (0, -0.01, 0),
        (0.0, 0.000, -0.020), (0.0, 0.285, -0.010), (0.0, 0.392, 0.060), (0.0, 0.535, 0.020),
        j[16] + (-0.01, 0, 0), j[18], j[20], j[17] + (0.01, 0, 0), j[19], j[21],
    ], dtype=np.float64)


# ---------------------------------------------------------------- blend shapes
def shape_directions(vertices: np.ndarray, weights: np.ndarray, axis_point: np.ndarray) -> np.ndarray:
    """(V, 3, 10) displacement per unit beta; ``axis_point`` (V, 3) is each vertex's point on
    its part's centre line (girth directions push away from it).

    Beta 0 is overall size (about 6 cm of height per Beta 0 is overall size (about 6 cm of height per
    unit); the others change girth, leg length, shoulder width, hip width, arm length, belly,
    neck/head height, torso length and limb muscularity."""
    x, y, z = vertices.T
    ax, sx = np.abs(x), np.sign(x)
    radial = vertices - axis_point
    limbs = weights[:, [1, 2, 4, 5, 7, 8, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]].sum(axis=1)
    head = weights[:, [12, 15]].sum(axis=1)
    legs = weights[:, [1, 2, 4, 5, 7, 8, 10, 11]].sum(axis=1)
    trunk = 1 - limbs - head
    d = np.zeros((len(vertices), 3, N_BETAS))
    d[:, :, 0] = 0.035 * (vertices - np.array([0.0, -0.22, 0.0]))
    d[:, :, 1] = (0.12 * trunk + 0.07 * limbs + 0.015 * head)[:, None] * radial
    d[:, 1, 2] = -0.035 * np.clip((-0.30 - y) / 0.78, 0, 1)
    d[:, 0, 3] = 0.022 * sx * _ramp(ax, 0.05, 0.17) * _ramp(y, 0.0, 0.14)
    d[:, 0, 4] = 0.016 * sx * (legs + (1 - legs) * np.clip(ax / 0.17, 0, 1) * _ramp(y, -0.08, -0.30))
    d[:, 0, 5] = 0.025 * sx * np.clip((ax - 0.18) / 0.68, 0, 1)
    belly = np.exp(-((y + 0.04) / 0.13) ** 2) * trunk * np.clip(z / 0.11, 0, 1) ** 1.5
    d[:, 2, 6] = 0.03 * belly
    d[:, 1, 6] = -0.01 * belly * (y + 0.04) / 0.13
    d[:, 1, 7] = 0.018 * _ramp(y, 0.29, 0.40)
    d[:, 1, 8] = 0.03 * _ramp(y, -0.30, 0.12)
    d[:, :, 9] = (0.12 * limbs)[:, None] * radial
    return _orthogonalise(d)


def _orthogonalise(d: np.ndarray) -> np.ndarray:
    """Remove from every beta its overall-size part (beta 0), and from arm length (beta 5) its
    shoulder-width part, keeping each direction's length. Beta 2 then means long legs at about
    constant height, beta 8 a long torso at about constant height, etc.: the basis becomes
    nearly orthogonal (like SMPL's PCA basis) while each direction keeps its meaning."""
    def dot(a: np.ndarray, b: np.ndarray) -> float:
        # numpy's pairwise sum, not BLAS: the result must not depend on the thread count.
        return float(np.sum(a * b))

    flat = d.reshape(-1, d.shape[-1]).copy()  # (3V, 10)
    out = flat.copy()
    for k, against in [(k, [0]) for k in range(1, flat.shape[1])] + [(5, [3])]:
        vec = out[:, k]
        for m in against:
            vec = vec - dot(vec, out[:, m]) / dot(out[:, m], out[:, m]) * out[:, m]
        out[:, k] = vec * np.sqrt(dot(flat[:, k], flat[:, k]) / dot(vec, vec))
    return out.reshape(d.shape)


def pose_directions(vertices: np.ndarray, weights: np.ndarray, axis_point: np.ndarray) -> np.ndarray:
    """(V, 3, 207) pose correctives: flesh bulges outwards where a bent joint blends its two bones.

    For joint j the three diagonal features (R_j - I)_kk get -c_j/2 * g * n, so that a bend by
    angle a displaces a vertex by c_j * (1 - cos a) * g * n, with n the outward direction from
    the part's centre line and g = 4 w_parent w_j (zero outside the blend zone of joint j).
    """
    radial = vertices - axis_point
    n = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    amplitude = np.full(N_JOINTS, 0.004)
    amplitude[[4, 5, 18, 19]] = 0.010  # knees and elbows
    amplitude[[1, 2, 16, 17]] = 0.006  # hips and shoulders
    posedirs = np.zeros((len(vertices), 3, 9 * (N_JOINTS - 1)))
    for j in range(1, N_JOINTS):
        g = 4.0 * weights[:, SMPL24_PARENTS[j]] * weights[:, j]
        for k in range(3):
            posedirs[:, :, 9 * (j - 1) + 4 * k] = -0.5 * amplitude[j] * g[:, None] * n
    return posedirs
