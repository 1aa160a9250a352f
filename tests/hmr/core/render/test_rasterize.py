import numpy as np

from hmr.core.render import rasterize, render_mesh, vertex_normals


def icosphere(subdiv=2):
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                  [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                  [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                  [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    for _ in range(subdiv):
        cache, verts, faces = {}, list(v), []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                cache[key] = len(verts)
                verts.append((verts[a] + verts[b]) / 2)
            return cache[key]
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        v, f = np.array(verts), np.array(faces)
    return v / np.linalg.norm(v, axis=1, keepdims=True), f


def test_square_covers_exact_pixel_centres():
    # Two triangles covering x in [2, 5], y in [1, 3]: pixel centres 2..5 x 1..3 inside.
    verts = np.array([[2, 1, 1], [5, 1, 1], [5, 3, 1], [2, 3, 1]], float)
    frags = rasterize(verts, np.array([[0, 1, 2], [0, 2, 3]]), 6, 8)
    expected = np.zeros((6, 8), bool)
    expected[1:4, 2:6] = True
    np.testing.assert_array_equal(frags.mask, expected)
    np.testing.assert_allclose(frags.depth[frags.mask], 1.0)
    np.testing.assert_allclose(frags.bary[frags.mask].sum(axis=1), 1.0)


def test_nearest_triangle_wins():
    near = [[0, 0, 1], [9, 0, 1], [0, 9, 1]]
    far = [[0, 0, 5], [9, 0, 5], [0, 9, 5]]
    verts = np.array(far + near, float)
    frags = rasterize(verts, np.array([[0, 1, 2], [3, 4, 5]]), 10, 10)
    assert (frags.face[frags.mask] == 1).all()


def test_sphere_silhouette_matches_projection():
    v, f = icosphere(3)
    center = np.array([0.1, -0.05, 3.0])
    radius = 0.5
    verts = v * radius + center
    K = np.array([[200, 0, 64], [0, 200, 64], [0, 0, 1]], float)
    img, coverage, frags = render_mesh(verts, f, K, 128, 128, supersample=1,
                                       background=np.zeros((128, 128, 3), np.uint8))
    # A sphere projects to (nearly) a disc; compare pixel areas with the analytic ellipse.
    yy, xx = np.mgrid[0:128, 0:128]
    c = K @ center / center[2]
    r_px = 200 * radius / np.sqrt(center[2] ** 2 - radius ** 2)
    disc = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= r_px ** 2
    iou = (disc & frags.mask).sum() / (disc | frags.mask).sum()
    assert iou > 0.95
    # Depth of the nearest point is center_z - radius at the disc centre.
    assert abs(frags.depth[int(round(c[1])), int(round(c[0]))] - (center[2] - radius)) < 0.01
    assert img[frags.mask].mean() > 50 and img[~frags.mask].max() == 0


def test_vertex_normals_point_outwards_on_sphere():
    v, f = icosphere(2)
    n = vertex_normals(v, f)
    assert (np.einsum("ij,ij->i", n, v) > 0.99).all()
