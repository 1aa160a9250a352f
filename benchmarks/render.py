"""Rendering throughput of the synthetic-data renderer (issue 8: images/s at 128x128).

Renders the mannequin in sampled poses at 128x128 (2x supersampling, and without it as the
demo renders; shading, background compositing) with the vectorised rasteriser, against a straightforward baseline in the same
run: the same z-buffer filled by a Python loop over triangles (each triangle tested against
the pixel centres of its bounding box with numpy). Prints images/s for both and the ratio.

    python benchmarks/render.py [--n 40] [--size 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def loop_rasterize(verts_px: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """Baseline: per-triangle loop; returns the depth buffer."""
    depth = np.full((height, width), np.inf)
    for tri in verts_px[faces]:
        x0, x1 = int(max(np.ceil(tri[:, 0].min()), 0)), int(min(np.floor(tri[:, 0].max()), width - 1))
        y0, y1 = int(max(np.ceil(tri[:, 1].min()), 0)), int(min(np.floor(tri[:, 1].max()), height - 1))
        if x1 < x0 or y1 < y0:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        a, b, c = tri[:, :2]
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-12:
            continue
        wb = ((xx - a[0]) * (c[1] - a[1]) - (yy - a[1]) * (c[0] - a[0])) / area
        wc = ((yy - a[1]) * (b[0] - a[0]) - (xx - a[0]) * (b[1] - a[1])) / area
        wa = 1 - wb - wc
        inside = (wa >= 0) & (wb >= 0) & (wc >= 0)
        z = wa * tri[0, 2] + wb * tri[1, 2] + wc * tri[2, 2]
        region = depth[y0:y1 + 1, x0:x1 + 1]
        np.minimum(region, np.where(inside, z, np.inf), out=region)
    return depth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--smoke", action="store_true", help="seconds: --n 4 --size 64 (checks the script runs; figures meaningless)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.size = 4, 64
    torch.set_num_threads(1)
    from hmr.core.utils.machine import machine_line

    print(f"machine: {machine_line(1)}")

    from hmr.core.body import load_body_model
    from hmr.core.render import rasterize, render_mesh
    from hmr.core.render.shade import to_screen
    from hmr.synth.generate import place_in_view
    from hmr.synth.poses import PoseSampler, upright_orient

    rng = np.random.default_rng(0)
    model = load_body_model()
    faces = np.asarray(model.faces, dtype=np.int64)
    poses = PoseSampler().sample(rng, args.n)
    orient = upright_orient(rng, args.n)
    with torch.no_grad():
        out = model(global_orient=torch.from_numpy(orient), body_pose=torch.from_numpy(poses["body_pose"]),
                    betas=torch.from_numpy(poses["betas"]))
    size, focal = args.size, 2.0 * args.size
    K = np.array([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]])
    bodies = [v + place_in_view(v, focal, size, 0.7, np.zeros(2)) for v in out.vertices.double().numpy()]
    background = np.full((size, size, 3), 128, np.uint8)

    full = {}
    for supersample in (2, 1):  # hmr synth's default, and the demo's (no antialiasing)
        start = time.perf_counter()
        for v in bodies:
            render_mesh(v, faces, K, size, size, background=background, supersample=supersample)
        full[supersample] = args.n / (time.perf_counter() - start)

    start = time.perf_counter()
    for v in bodies:
        rasterize(to_screen(v, K), faces, size, size)
    ours = args.n / (time.perf_counter() - start)
    m = max(4, args.n // 10)  # the loop is slow: time a subset
    start = time.perf_counter()
    for v in bodies[:m]:
        loop_rasterize(to_screen(v, K), faces, size, size)
    loop = m / (time.perf_counter() - start)
    d_ours = rasterize(to_screen(bodies[0], K), faces, size, size).depth
    d_loop = loop_rasterize(to_screen(bodies[0], K), faces, size, size)
    agree = np.isclose(d_ours, d_loop, atol=1e-3) | (np.isinf(d_ours) & np.isinf(d_loop))
    print(f"mannequin: {len(faces)} faces, {size}x{size} px, one core")
    print(f"full render (2x supersampled, shaded, composited): {full[2]:8.1f} images/s")
    print(f"full render (no supersampling, the demo's):        {full[1]:8.1f} images/s ({full[1] / full[2]:.1f}x)")
    print(f"rasterise only, vectorised (ours):                 {ours:8.1f} images/s")
    print(f"rasterise only, per-triangle loop (baseline):      {loop:8.1f} images/s")
    print(f"speed-up of the rasteriser over the loop:          {ours / loop:8.1f}x")
    print(f"depth buffers agree on {100 * agree.mean():.2f}% of pixels (linear vs perspective-correct depth)")


if __name__ == "__main__":
    main()
