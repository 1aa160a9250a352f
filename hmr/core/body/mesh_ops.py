"""Triangle-mesh building blocks for the procedural mannequin, and surface checks.

Conventions: a *loop* is an int array of vertex indices around a closed curve. Loops handed
to :func:`band` / :func:`zipper` run counter-clockwise about the direction in which the surface
continues (right-hand rule), so that every triangle we emit has an outward normal and every
interior edge is used once in each direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def band(loop_a: np.ndarray, loop_b: np.ndarray) -> np.ndarray:
    """Triangles of the band between two loops of equal length, ``a`` first along the tube.

    Returns (2K, 3) int64. Loops run counter-clockwise about the tube direction.
    """
    a, b = np.asarray(loop_a), np.asarray(loop_b)
    a1, b1 = np.roll(a, -1), np.roll(b, -1)
    lower = np.stack([a, a1, b], axis=1)  # (K, 3)
    upper = np.stack([a1, b1, b], axis=1)  # (K, 3)
    return np.concatenate([lower, upper], axis=0)


def loop_angles(points: np.ndarray, center: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Unwrapped angle of each loop point about ``axis`` through ``center``, starting at 0.

    points (N, 3); returns (N,) increasing when the loop is counter-clockwise about ``axis``.
    """
    axis = axis / np.linalg.norm(axis)
    ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - axis * (ref @ axis)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    rel = points - center
    ang = np.unwrap(np.arctan2(rel @ e2, rel @ e1))
    return ang - ang[0]


def zipper(loop_a: np.ndarray, loop_b: np.ndarray, pts: np.ndarray, center: np.ndarray,
           axis: np.ndarray) -> np.ndarray:
    """Triangles joining two loops of any lengths (``len(a) + len(b)`` triangles).

    Both loops run counter-clockwise about ``axis``; ``pts`` (V, 3) are all vertex positions.
    The walk advances on whichever loop is angularly behind, like merging two sorted lists.
    """
    a, b = np.asarray(loop_a), np.asarray(loop_b)
    ang_a = loop_angles(pts[a], center, axis)
    if ang_a[-1] < np.pi:
        raise ValueError("loop A does not turn counter-clockwise about the axis")
    # Start loop B at its vertex angularly closest to a[0].
    ang_b0 = loop_angles(np.concatenate([pts[a[:1]], pts[b]]), center, axis)[1:]
    start = int(np.argmin(np.abs(np.angle(np.exp(1j * ang_b0)))))
    b = np.roll(b, -start)
    ang_b = loop_angles(np.concatenate([pts[a[:1]], pts[b]]), center, axis)[1:]
    ang_b = ang_b - 2 * np.pi * np.round(ang_b[0] / (2 * np.pi))
    ta = np.append(ang_a, ang_a[0] + 2 * np.pi)
    tb = np.append(ang_b, ang_b[0] + 2 * np.pi)
    na, nb = len(a), len(b)
    tris, i, j = [], 0, 0
    while i < na or j < nb:
        advance_a = j >= nb or (i < na and ta[i + 1] <= tb[j + 1])
        if advance_a:
            tris.append((a[i % na], a[(i + 1) % na], b[j % nb]))
            i += 1
        else:
            tris.append((a[i % na], b[(j + 1) % nb], b[j % nb]))
            j += 1
    return np.asarray(tris, dtype=np.int64)


def _strip(path_p: np.ndarray, path_q: np.ndarray, pts: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate the disk between two open paths that share both endpoints.

    ``p`` is traversed forward (its edges appear as p_i -> p_{i+1}), ``q`` backward.
    Gives len(p) + len(q) - 4 triangles.
    """
    def arclen(path: np.ndarray) -> np.ndarray:
        seg = np.linalg.norm(np.diff(pts[path], axis=0), axis=1)
        t = np.concatenate([[0.0], np.cumsum(seg)])
        return t / t[-1]

    tp, tq = arclen(path_p), arclen(path_q)
    n, m = len(path_p) - 1, len(path_q) - 1
    tris, i, j = [], 1, 0
    while (i, j) != (n, m - 1):
        advance_p = j >= m - 1 or (i < n and tp[i + 1] <= tq[j + 1])
        if advance_p:
            tris.append((path_p[i], path_p[i + 1], path_q[j]))
            i += 1
        else:
            tris.append((path_p[i], path_q[j + 1], path_q[j]))
            j += 1
    return tris


def seam_cap(loop: np.ndarray, chain: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Close a loop (counter-clockwise about the outward direction of the opening) with a
    disk whose interior vertices form one chain from ``loop[0]`` to ``loop[K // 2]``.

    Gives K + 2m - 2 triangles for K loop vertices and m chain vertices.
    """
    loop = np.asarray(loop)
    half = len(loop) // 2
    q = np.concatenate([[loop[0]], chain, [loop[half]]])
    side1 = _strip(loop[: half + 1], q, pts)
    side2 = _strip(np.concatenate([loop[half:], loop[:1]]), q[::-1], pts)
    return np.asarray(side1 + side2, dtype=np.int64)


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Loops of the directed boundary edges of an open, consistently oriented mesh.

    Each loop follows the faces' own edge direction; attach new faces with it reversed.
    """
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = {(int(u), int(v)) for u, v in edges}
    nxt: dict[int, int] = {}
    for u, v in directed:
        if (v, u) not in directed:
            if u in nxt:
                raise ValueError(f"vertex {u} is on the boundary twice (pinched)")
            nxt[u] = v
    loops = []
    while nxt:
        start = min(nxt)
        loop = [start]
        cur = nxt.pop(start)
        while cur != start:
            loop.append(cur)
            cur = nxt.pop(cur)
        loops.append(np.asarray(loop, dtype=np.int64))
    return loops


@dataclass(frozen=True)
class SurfaceReport:
    """Topological facts about a triangle mesh."""

    n_vertices: int
    n_faces: int
    n_edges: int
    euler: int
    closed: bool  # every undirected edge in exactly two faces
    oriented: bool  # every directed edge exactly once
    components: int
    unused_vertices: int
    degenerate_faces: int
    signed_volume: float

    @property
    def genus(self) -> float:
        return (2 * self.components - self.euler) / 2


def surface_report(vertices: np.ndarray, faces: np.ndarray) -> SurfaceReport:
    """Check closedness, orientation, Euler characteristic and volume of ``faces``.

    vertices (V, 3), faces (F, 3) int.
    """
    faces = np.asarray(faces, dtype=np.int64)
    nv = len(vertices)
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = directed[:, 0] * nv + directed[:, 1]
    _, dir_counts = np.unique(key, return_counts=True)
    undirected = np.sort(directed, axis=1)
    _, und_counts = np.unique(undirected[:, 0] * nv + undirected[:, 1], return_counts=True)
    degenerate = int(np.sum((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
                            | (faces[:, 0] == faces[:, 2])))
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    degenerate += int(np.sum(np.linalg.norm(cross, axis=1) < 1e-12))
    volume = float(np.sum(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))) / 6.0)
    used = np.zeros(nv, bool)
    used[faces.ravel()] = True
    return SurfaceReport(
        n_vertices=nv, n_faces=len(faces), n_edges=len(und_counts),
        euler=nv - len(und_counts) + len(faces),
        closed=bool(np.all(und_counts == 2)), oriented=bool(np.all(dir_counts == 1)),
        components=_count_components(nv, undirected), unused_vertices=int(nv - used.sum()),
        degenerate_faces=degenerate, signed_volume=volume)


def _count_components(nv: int, edges: np.ndarray) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(nv, nv))
    used = np.zeros(nv, bool)
    used[edges.ravel()] = True
    n, labels = connected_components(graph, directed=False)
    return len(np.unique(labels[used]))
