"""Quick-look pictures of body meshes (matplotlib, orthographic, painter's algorithm).

Views, with SMPL's axes (y up, body facing +z, body's left at +x):
``front`` looks at the face (camera on +z: the body's left appears on the image's right);
``side`` looks from the body's right (camera on -x: the body's front appears on the right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VIEWS = {
    # name: (image-right axis, depth axis towards the camera); up is always +y.
    "front": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])),
    "side": (np.array([0.0, 0.0, 1.0]), np.array([-1.0, 0.0, 0.0])),
}
_LIGHT = np.array([0.35, 0.55, 0.75])


def draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, view: str = "front",
              color=(0.80, 0.68, 0.55), edges: bool = False) -> None:
    """Draw one mesh on a matplotlib Axes. vertices (V, 3) m, faces (F, 3)."""
    from matplotlib.collections import PolyCollection

    right, towards = VIEWS[view]
    up = np.array([0.0, 1.0, 0.0])
    tri = vertices[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    facing = normal @ towards
    keep = facing > 0  # back-face culling (the surface is closed and outward oriented)
    light = _LIGHT[0] * right + _LIGHT[1] * up + _LIGHT[2] * towards
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.clip(normal @ light, 0, 1)
    depth = (tri @ towards).mean(axis=1)
    order = np.flatnonzero(keep)[np.argsort(depth[keep])]
    xy = np.stack([tri[order] @ right, tri[order] @ up], axis=-1)  # (F', 3, 2)
    colors = np.clip(np.asarray(color)[None, :] * shade[order, None], 0, 1)
    coll = PolyCollection(xy, facecolors=colors, edgecolors=(0, 0, 0, 0.15) if edges else colors,
                          linewidths=0.2 if edges else 0.3)
    ax.add_collection(coll)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_axis_off()


def render_bodies(out_path: str | Path, bodies: list[tuple[str, np.ndarray]], faces: np.ndarray,
                  joints: list[np.ndarray] | None = None, dpi: int = 110) -> Path:
    """Write a PNG with front and side views of each (title, vertices (V, 3)) body.

    ``joints`` (optional, one (J, 3) array per body) are drawn as red dots.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmr.core.utils.atomic import atomic_path

    n = len(bodies)
    fig, axes = plt.subplots(1, 2 * n, figsize=(4.2 * n, 4.6), squeeze=False)
    for k, (title, verts) in enumerate(bodies):
        for m, view in enumerate(("front", "side")):
            ax = axes[0, 2 * k + m]
            draw_mesh(ax, verts, faces, view)
            if joints is not None:
                right, _ = VIEWS[view]
                ax.plot(joints[k] @ right, joints[k][:, 1], "r.", markersize=3)
            ax.set_title(f"{title} ({view})", fontsize=9)
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return out_path


def bent_pose_aa() -> np.ndarray:
    """(72,) an axis-angle pose that bends elbows, knees, hips and shoulders (for previews)."""
    pose = np.zeros((24, 3))
    pose[16], pose[17] = (0, 0, -1.1), (0, 0, 1.1)  # shoulders: arms lowered
    pose[18], pose[19] = (0, -1.5, 0), (0, 1.0, 0)  # elbows bent forward
    pose[1], pose[4] = (-1.0, 0, 0), (1.3, 0, 0)  # left hip flexed, left knee bent
    pose[2], pose[5] = (-0.3, 0, 0.1), (0.4, 0, 0)
    pose[15] = (0.2, 0.4, 0)  # head turned
    return pose.reshape(72)


def render_preview(out_path: str | Path, path: str | Path | None = None, gender: str = "neutral"
                   ) -> Path:
    """Front and side views of a body model in its rest pose and in :func:`bent_pose_aa`."""
    import torch

    from hmr.core.body.smpl import load_body_model

    model = load_body_model(path, gender=gender)
    pose = torch.as_tensor(np.stack([np.zeros(72), bent_pose_aa()]), dtype=torch.float32)
    with torch.no_grad():
        out = model(global_orient=pose[:, :3], body_pose=pose[:, 3:])
    verts = out.vertices.numpy()
    joints = [j.numpy() for j in out.joints_smpl24]
    return render_bodies(out_path, [("rest", verts[0]), ("bent", verts[1])], model.faces, joints)
