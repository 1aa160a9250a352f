"""Procedural geometry of the mannequin: one closed, genus-0 triangle surface of a person.

Coordinates follow SMPL's rest pose: metres, T-pose, y up, the body faces +z, its LEFT side is
at +x, the pelvis joint near (0, -0.22, 0) and the soles near y = -1.165.

Construction (all deterministic):

* torso: a grid of rings (superellipse cross-sections) from the crotch to the neck base, with a
  rectangular hole on each side where an arm attaches;
* legs: the torso's bottom ring is split into a left and a right loop by a "crotch seam" (a chain
  of vertices across the ring); each leg is lofted from its loop down to the ankle, bends forward
  into the foot and is closed at the toes;
* arms: lofted from the side holes along +-x to flat hands, closed at the fingertips;
* neck and head: lofted from the torso's top ring and closed at the crown.

Loops of different lengths are joined by :func:`~hmr.core.body.mesh_ops.zipper`; ends are closed by
:func:`~hmr.core.body.mesh_ops.seam_cap`. The head-crown chain absorbs the vertex budget, so the
surface has exactly SMPL's 6890 vertices (and therefore 13776 = 2*6890 - 4 faces).

Each vertex also records the *part* it belongs to and its arclength along that part's centre
line, which the rig (weights, regressors, blend shapes) uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hmr.core.body import mesh_ops

N_VERTICES = 6890
N_FACES = 13776

PART_TORSO, PART_LEG_L, PART_LEG_R, PART_ARM_L, PART_ARM_R, PART_HEAD = range(6)
PART_NAMES = ("torso", "left_leg", "right_leg", "left_arm", "right_arm", "head")

# Rest joints of the neutral mannequin (metres), SMPL order. Right joints mirror left ones.
_LEFT_JOINTS = {
    "hip": (0.075, -0.315, 0.005), "knee": (0.095, -0.695, 0.005), "ankle": (0.100, -1.080, -0.035),
    "foot": (0.115, -1.140, 0.095), "collar": (0.075, 0.205, -0.010), "shoulder": (0.180, 0.225, -0.020),
    "elbow": (0.430, 0.215, -0.035), "wrist": (0.680, 0.215, -0.030), "hand": (0.765, 0.212, -0.030),
}
_CENTRE_JOINTS = {
    "pelvis": (0.0, -0.220, 0.015), "spine1": (0.0, -0.110, -0.010), "spine2": (0.0, 0.025, -0.005),
    "spine3": (0.0, 0.085, 0.0), "neck": (0.0, 0.300, -0.020), "head": (0.0, 0.380, 0.020),
}


def rest_joints() -> np.ndarray:
    """(24, 3) rest joint positions of the neutral mannequin in SMPL joint order."""
    c, l_ = _CENTRE_JOINTS, _LEFT_JOINTS

    def r(name: str) -> tuple[float, float, float]:
        x, y, z = l_[name]
        return (-x, y, z)

    order = [c["pelvis"], l_["hip"], r("hip"), c["spine1"], l_["knee"], r("knee"), c["spine2"],
             l_["ankle"], r("ankle"), c["spine3"], l_["foot"], r("foot"), c["neck"], l_["collar"],
             r("collar"), c["head"], l_["shoulder"], r("shoulder"), l_["elbow"], r("elbow"),
             l_["wrist"], r("wrist"), l_["hand"], r("hand")]
    return np.asarray(order, dtype=np.float64)


@dataclass
class MeshBuilder:
    """Accumulates vertices (with part, arclength and axis point) and faces."""

    points: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    arclen: list = field(default_factory=list)
    centres: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    count: int = 0

    def add(self, pts: np.ndarray, part: int, s: np.ndarray | float, centre: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(np.asarray(pts, dtype=np.float64))
        n = len(pts)
        self.points.append(pts)
        self.parts.append(np.full(n, part, dtype=np.int64))
        self.arclen.append(np.broadcast_to(np.asarray(s, dtype=np.float64), (n,)).copy())
        self.centres.append(np.broadcast_to(np.asarray(centre, dtype=np.float64), (n, 3)).copy())
        idx = np.arange(self.count, self.count + n)
        self.count += n
        return idx

    def all_points(self) -> np.ndarray:
        return np.concatenate(self.points)


def _interp(table: list[tuple], t: np.ndarray | float) -> np.ndarray:
    """Linear interpolation of a profile table [(t, v1, v2, ...), ...] at ``t``."""
    arr = np.asarray(table, dtype=np.float64)
    return np.stack([np.interp(t, arr[:, 0], arr[:, k]) for k in range(1, arr.shape[1])], axis=-1)


def _superellipse(theta: np.ndarray, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(theta), np.sin(theta)
    return np.sign(c) * np.abs(c) ** (2 / exponent), np.sign(s) * np.abs(s) ** (2 / exponent)


# ---------------------------------------------------------------- torso
N_TORSO = 48  # ring vertices; multiple of 4 (front/back centres are columns 3N/4 and N/4)
# y, half-width x, half-depth z, centre z
_TORSO_PROFILE = [
    (-0.372, 0.158, 0.092, 0.000), (-0.330, 0.170, 0.104, -0.008), (-0.250, 0.176, 0.112, -0.012),
    (-0.150, 0.156, 0.102, -0.002), (-0.080, 0.140, 0.096, 0.004), (0.020, 0.146, 0.100, 0.010),
    (0.120, 0.160, 0.110, 0.010), (0.200, 0.168, 0.108, 0.000), (0.270, 0.172, 0.094, -0.010),
    (0.305, 0.128, 0.074, -0.016), (0.332, 0.064, 0.058, -0.018),
]
_TORSO_ROWS_Y = np.concatenate([np.linspace(-0.372, 0.26, 45), np.linspace(0.276, 0.332, 5)])
_ARM_HOLE_Y = (0.150, 0.292)  # rows whose lateral vertices bound the arm hole
_ARM_HOLE_HALF_ANGLE = 0.62  # rad about the lateral direction


def _torso_ring(y: float) -> np.ndarray:
    """(N_TORSO, 3) ring at height y; theta=0 at +x, counter-clockwise about +y."""
    rx, rz, cz = _interp(_TORSO_PROFILE, y)
    theta = 2 * np.pi * np.arange(N_TORSO) / N_TORSO
    ex, ez = _superellipse(theta, 2.6)
    x, z = rx * ex, cz - rz * ez
    # Sloping shoulders: lateral points of the upper rows drop towards the acromion.
    ramp = np.clip((y - 0.22) / 0.11, 0.0, 1.0)
    yy = y - 0.30 * np.maximum(0.0, np.abs(x) - 0.075) * ramp ** 1.5
    return np.stack([x, yy, z], axis=1)


def build_torso(mb: MeshBuilder) -> dict:
    rows = []
    for y in _TORSO_ROWS_Y:
        ring = _torso_ring(float(y))
        rows.append(mb.add(ring, PART_TORSO, y, np.array([0.0, y, ring[:, 2].mean()])))
    theta = 2 * np.pi * np.arange(N_TORSO) / N_TORSO
    lateral_l = np.abs(np.angle(np.exp(1j * theta))) < _ARM_HOLE_HALF_ANGLE
    lateral_r = np.abs(np.angle(np.exp(1j * (theta - np.pi)))) < _ARM_HOLE_HALF_ANGLE
    row_in_hole = (_TORSO_ROWS_Y >= _ARM_HOLE_Y[0]) & (_TORSO_ROWS_Y < _ARM_HOLE_Y[1])
    faces = []
    for i in range(len(rows) - 1):
        quads = mesh_ops.band(rows[i], rows[i + 1]).reshape(2, N_TORSO, 3)
        keep = np.ones(N_TORSO, bool)
        if row_in_hole[i] and row_in_hole[i + 1]:
            # quad (i, j) spans columns j..j+1; drop it when both columns are lateral.
            lat_next_l, lat_next_r = np.roll(lateral_l, -1), np.roll(lateral_r, -1)
            keep &= ~(lateral_l & lat_next_l) & ~(lateral_r & lat_next_r)
        faces.append(quads[:, keep].reshape(-1, 3))
    faces = np.concatenate(faces)
    mb.faces.append(faces)
    return {"rows": rows, "faces": faces}


# ---------------------------------------------------------------- lofted limbs
def _resample(control: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing`` metres along a polyline; returns (M, 3) points, (M,) arclength."""
    seg = np.linalg.norm(np.diff(control, axis=0), axis=1)
    s_ctrl = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(round(s_ctrl[-1] / spacing)) + 1)
    s = np.linspace(0.0, s_ctrl[-1], n)
    pts = np.stack([np.interp(s, s_ctrl, control[:, k]) for k in range(3)], axis=1)
    return pts, s


def _frames(centre: np.ndarray, up_hint: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangent d, and u (closest to ``up_hint``), v = d x u so that u x v = d. All (M, 3)."""
    d = np.gradient(centre, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    u = up_hint[None, :] - d * (d @ up_hint)[:, None]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(d, u)
    return d, u, v


def _loft(mb: MeshBuilder, part: int, centre: np.ndarray, s: np.ndarray, u: np.ndarray,
          v: np.ndarray, radii: np.ndarray, k: int, bump=None) -> list[np.ndarray]:
    """One ring of ``k`` vertices per centre-line point; radii (M, 2) along u and v.

    ``bump(theta (K,), ring index) -> (K,)`` adds radius (metres) in the ring's own directions.
    """
    theta = 2 * np.pi * np.arange(k) / k
    rings = []
    for i in range(len(centre)):
        extra = np.zeros(k) if bump is None else bump(theta, i)
        cu = (radii[i, 0] + extra) * np.cos(theta)
        cv = (radii[i, 1] + extra) * np.sin(theta)
        pts = centre[i] + cu[:, None] * u[i] + cv[:, None] * v[i]
        rings.append(mb.add(pts, part, s[i], centre[i]))
    for a, b in zip(rings[:-1], rings[1:]):
        mb.faces.append(mesh_ops.band(a, b))
    return rings


def _close(mb: MeshBuilder, loop: np.ndarray, part: int, tip: np.ndarray, s_tip: float,
           n_chain: int, across: np.ndarray, half_width: float) -> None:
    """Close ``loop`` with a seam cap whose chain spans ``across`` at the ``tip`` point."""
    t = np.linspace(-1, 1, n_chain + 2)[1:-1]
    chain_pts = tip + (half_width * t)[:, None] * across
    chain = mb.add(chain_pts, part, s_tip, tip)
    pts = mb.all_points()
    mb.faces.append(mesh_ops.seam_cap(loop, chain, pts))


def _smooth_polyline(control: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Chaikin corner cutting, keeping both ends."""
    pts = np.asarray(control, dtype=np.float64)
    for _ in range(iterations):
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        inner = np.empty((2 * len(q), 3))
        inner[0::2], inner[1::2] = q, r
        pts = np.concatenate([pts[:1], inner[1:-1], pts[-1:]])
    return pts


N_LEG = 28
N_ARM = 24
N_HEAD = 32
N_CROTCH_SEAM = 7


def leg_centreline(sign: float) -> np.ndarray:
    j = _LEFT_JOINTS
    ctrl = np.array([
        (0.084, -0.405, 0.002), (0.090, -0.56, 0.004), j["knee"], (0.098, -0.90, -0.020),
        (0.100, -1.060, -0.035), (0.102, -1.105, -0.015), (0.108, -1.128, 0.030),
        (0.114, -1.135, 0.095), (0.120, -1.138, 0.160)])
    ctrl[:, 0] *= sign
    return _smooth_polyline(ctrl, 3)


def build_leg(mb: MeshBuilder, loop: np.ndarray, sign: float) -> np.ndarray:
    part = PART_LEG_L if sign > 0 else PART_LEG_R
    centre, s = _resample(leg_centreline(sign), 0.024)
    d, u, v = _frames(centre, np.array([1.0, 0.0, 0.0]))
    mirror = np.array([sign, 1.0, 1.0])
    s_knee, s_ankle = (s[np.argmin(np.linalg.norm(centre - np.array(_LEFT_JOINTS[name]) * mirror, axis=1))]
                       for name in ("knee", "ankle"))
    total = s[-1]
    profile = [(0.0, 0.080, 0.094), (0.45 * s_knee, 0.068, 0.074), (s_knee - 0.06, 0.054, 0.057),
               (s_knee, 0.050, 0.053), (s_knee + 0.12, 0.052, 0.056), (s_ankle - 0.10, 0.038, 0.040),
               (s_ankle, 0.034, 0.040), (s_ankle + 0.06, 0.040, 0.036), (total - 0.10, 0.046, 0.028),
               (total - 0.04, 0.045, 0.021), (total, 0.032, 0.012)]
    radii = _interp(profile, s)

    def bump(theta: np.ndarray, i: int) -> np.ndarray:
        # Calf muscle at the back (-v before the ankle) and the heel at the back of the bend.
        back = np.maximum(0.0, -np.sin(theta)) ** 2
        calf = 0.014 * np.exp(-((s[i] - (s_knee + 0.13)) / 0.08) ** 2)
        heel = 0.030 * np.exp(-((s[i] - (s_ankle + 0.045)) / 0.03) ** 2)
        return (calf + heel) * back

    rings = _loft(mb, part, centre, s, u, v, radii, N_LEG, bump)
    pts = mb.all_points()
    mb.faces.append(mesh_ops.zipper(loop, rings[0], pts, centre[0], d[0]))
    tip = centre[-1] + 0.012 * d[-1]
    _close(mb, rings[-1], part, tip, s[-1] + 0.012, 3, u[-1], 0.022)
    return np.concatenate(rings)


def arm_centreline(sign: float) -> np.ndarray:
    ctrl = np.array([(0.196, 0.222, -0.018), (0.43, 0.215, -0.035), (0.68, 0.215, -0.030),
                     (0.86, 0.208, -0.030)])
    ctrl[:, 0] *= sign
    return ctrl


def build_arm(mb: MeshBuilder, loop: np.ndarray, sign: float) -> None:
    part = PART_ARM_L if sign > 0 else PART_ARM_R
    centre, s = _resample(arm_centreline(sign), 0.021)
    d, u, v = _frames(centre, np.array([0.0, 1.0, 0.0]))
    x0 = 0.196
    prof_x = [(0.196, 0.058, 0.058), (0.25, 0.050, 0.052), (0.32, 0.046, 0.046), (0.40, 0.038, 0.040),
              (0.43, 0.036, 0.039), (0.49, 0.038, 0.044), (0.60, 0.030, 0.035), (0.67, 0.022, 0.030),
              (0.70, 0.020, 0.036), (0.76, 0.016, 0.044), (0.80, 0.012, 0.042), (0.845, 0.009, 0.036),
              (0.86, 0.006, 0.028)]
    radii = _interp(prof_x, x0 + s)
    rings = _loft(mb, part, centre, s, u, v, radii, N_ARM)
    pts = mb.all_points()
    mb.faces.append(mesh_ops.zipper(loop, rings[0], pts, centre[0], d[0]))
    tip = centre[-1] + 0.008 * d[-1]
    _close(mb, np.roll(rings[-1], -N_ARM // 4), part, tip, s[-1] + 0.008, 3, v[-1], 0.02)


def build_head(mb: MeshBuilder, loop: np.ndarray, n_chain: int) -> None:
    y = np.concatenate([np.linspace(0.345, 0.53, 24), [0.543, 0.552, 0.558]])
    # Neck below the jaw blends into an ellipsoidal skull centred in front of the neck.
    cy, ry, rx_h, rz_h, cz_h = 0.455, 0.112, 0.079, 0.098, 0.022
    t = np.clip((y - cy) / ry, -1, 1)
    skull = np.sqrt(np.clip(1 - t ** 2, 0, 1))
    neck_w = np.clip((0.42 - y) / 0.05, 0, 1)
    rx = np.maximum(rx_h * skull, 0.054 * neck_w)
    rz = np.maximum(rz_h * skull, 0.058 * neck_w)
    cz = cz_h * (1 - neck_w) - 0.018 * neck_w
    centre = np.stack([np.zeros_like(y), y, cz], axis=1)
    u = np.tile([0.0, 0.0, 1.0], (len(y), 1))
    v = np.tile([1.0, 0.0, 0.0], (len(y), 1))

    def bump(theta: np.ndarray, i: int) -> np.ndarray:
        front = np.exp(-(np.angle(np.exp(1j * theta)) / 0.22) ** 2)
        side = np.exp(-((np.abs(np.angle(np.exp(1j * theta))) - np.pi / 2) / 0.25) ** 2)
        nose = 0.018 * np.exp(-((y[i] - 0.440) / 0.014) ** 2) * front
        chin = 0.010 * np.exp(-((y[i] - 0.385) / 0.015) ** 2) * front
        ears = 0.012 * np.exp(-((y[i] - 0.455) / 0.02) ** 2) * side
        return nose + chin + ears

    rings = _loft(mb, PART_HEAD, centre, y, u, v, np.stack([rz, rx], axis=1), N_HEAD, bump)
    pts = mb.all_points()
    mb.faces.append(mesh_ops.zipper(loop, rings[0], pts, centre[0], np.array([0.0, 1.0, 0.0])))
    top = np.array([0.0, 0.5615, cz_h])
    _close(mb, rings[-1], PART_HEAD, top, 0.5615, n_chain, np.array([0.0, 0.0, 1.0]), 0.012)


# ---------------------------------------------------------------- assembly
@dataclass(frozen=True)
class MannequinMesh:
    """The rest-pose surface. vertices (6890, 3) m; faces (13776, 3); per-vertex part id and
    arclength along the part's centre line (torso/head: height y); axis point (6890, 3)."""

    vertices: np.ndarray
    faces: np.ndarray
    part: np.ndarray
    arclen: np.ndarray
    axis_point: np.ndarray


def _crotch_loops(mb: MeshBuilder, bottom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split the torso's bottom ring into left/right leg loops (counter-clockwise about -y)."""
    n = N_TORSO
    pts = mb.all_points()
    front, back = pts[bottom[3 * n // 4]], pts[bottom[n // 4]]
    t = np.linspace(0, 1, N_CROTCH_SEAM + 2)[1:-1]
    seam_pts = front + t[:, None] * (back - front)
    seam_pts[:, 1] -= 0.022 * np.sin(np.pi * t)  # the seam dips between the thighs
    seam = mb.add(seam_pts, PART_TORSO, seam_pts[:, 1], seam_pts)
    left = np.concatenate([bottom[n // 4::-1], bottom[:3 * n // 4 - 1:-1], seam])
    right = np.concatenate([bottom[3 * n // 4:n // 4 - 1:-1], seam[::-1]])
    return left, right


def _build(n_chain: int) -> MeshBuilder:
    mb = MeshBuilder()
    torso = build_torso(mb)
    rows = torso["rows"]
    loops = mesh_ops.boundary_loops(torso["faces"])
    pts = mb.all_points()
    holes = [lp for lp in loops if np.abs(pts[lp, 0].mean()) > 0.1]
    hole_l = next(lp for lp in holes if pts[lp, 0].mean() > 0)[::-1]
    hole_r = next(lp for lp in holes if pts[lp, 0].mean() < 0)[::-1]
    left, right = _crotch_loops(mb, rows[0])
    build_leg(mb, left, +1.0)
    build_leg(mb, right, -1.0)
    build_arm(mb, hole_l, +1.0)
    build_arm(mb, hole_r, -1.0)
    build_head(mb, rows[-1], n_chain)
    return mb


def _compact(mb: MeshBuilder) -> MannequinMesh:
    faces = np.concatenate(mb.faces)
    used = np.zeros(mb.count, bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    return MannequinMesh(
        vertices=mb.all_points()[used], faces=remap[faces].astype(np.int64),
        part=np.concatenate(mb.parts)[used], arclen=np.concatenate(mb.arclen)[used],
        axis_point=np.concatenate(mb.centres)[used])


def build_mesh() -> MannequinMesh:
    """The mannequin's rest surface with exactly :data:`N_VERTICES` vertices."""
    probe = _compact(_build(0))
    n_chain = N_VERTICES - len(probe.vertices)
    if n_chain < 0:
        raise RuntimeError(f"mannequin resolution too high: {len(probe.vertices)} vertices")
    mesh = _compact(_build(n_chain))
    assert len(mesh.vertices) == N_VERTICES and len(mesh.faces) == N_FACES, (
        len(mesh.vertices), len(mesh.faces))
    return mesh
