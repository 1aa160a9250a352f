"""Coarse versions of a body-model mesh for graph networks (GraphCMR), computed by us.

GraphCMR (Kolotouros et al., CVPR 2019) runs its graph CNN on the SMPL mesh subsampled 4×
(1,723 of 6,890 vertices) and upsamples the result to the full mesh with a sparse matrix; its
data file also holds a 16× level (431 vertices). Those matrices come from the COMA mesh
sampling code (quadric-error edge collapse), shipped as ``data/mesh_downsampling.npz`` with
keys ``A`` (adjacency per level), ``U`` (upsampling) and ``D`` (downsampling) — read in the
public repository ``nkolot/GraphCMR`` (``utils/mesh.py``: ``Mesh(num_downsampling=1)`` picks
the 1,723-vertex level; adjacency row-normalised with self loops by ``adjmat_sparse``).

We do not ship that file; :func:`mesh_hierarchy` computes an equivalent hierarchy from any
mesh (SMPL, the mannequin, any SMPL-topology model) with a simpler, documented scheme:

1. **Vertices kept**: farthest-point sampling on the mesh graph, geodesic distance = shortest
   path along edges weighted by their rest-pose length. Start: the vertex nearest the
   template's centroid (lowest index on ties); then repeatedly the vertex farthest from all
   kept ones (lowest index on ties). The order is one sequence, so level ``l`` keeps its first
   ``ceil(V / 4**l)`` vertices (1,723 and 431 for SMPL's 6,890) and every level is a subset of
   the finer one. A mesh in several pieces gets a seed in each piece first (unreached
   vertices are infinitely far).
2. **Adjacency** of a level: kept vertices ``i``, ``j`` are neighbours when a mesh edge joins
   a vertex whose geodesically nearest kept vertex is ``i`` to one whose nearest is ``j``
   (the graph dual to the geodesic Voronoi cells; binary, symmetric, no self loops).
3. **Downsampling** ``D (n, V)``: selects the kept vertices (as COMA's D, a vertex subset).
4. **Upsampling** ``U (V, n)``: each full-mesh vertex is an inverse-geodesic-distance weighted
   mean of its ``k = 3`` nearest kept vertices (weights sum to 1; a kept vertex maps to itself
   exactly), so ``U D x ≈ x`` for smooth meshes and ``D U = I``.

Deterministic (no randomness; ties broken by index) and cached: computed once per mesh
(keyed by a hash of the template vertices and faces, the level sizes and :data:`VERSION`) in
``$HMR_CACHE/mesh_sampling/`` (default ``~/.cache/hmrkit``), written atomically.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from hmr.core.errors import BodyModelError

VERSION = 1
UP_NEIGHBOURS = 3


@dataclass
class MeshLevel:
    """One coarse level; matrices relative to the full mesh of ``V`` vertices."""

    vertex_ids: np.ndarray  # (n,) int64 rows of the full mesh kept at this level
    adjacency: sp.csr_matrix  # (n, n) binary, symmetric, no self loops
    up: sp.csr_matrix  # (V, n) rows sum to 1

    @property
    def down(self) -> sp.csr_matrix:
        """(n, V) selection matrix."""
        n, total = len(self.vertex_ids), self.up.shape[0]
        return sp.csr_matrix((np.ones(n), (np.arange(n), self.vertex_ids)), shape=(n, total))


def level_size(num_vertices: int, level: int) -> int:
    """Vertices kept at ``level`` (each level 4× fewer, as GraphCMR's): 6,890 → 1,723 → 431."""
    return math.ceil(num_vertices / 4 ** level)


def edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """(V, V) symmetric edge lengths of the mesh's triangle edges."""
    faces = np.asarray(faces, dtype=np.int64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    # a zero-length edge would read as "no edge" in a sparse matrix
    length = np.maximum(length, 1e-9)
    n = len(vertices)
    graph = sp.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (graph + graph.T).tocsr()


def farthest_point_order(graph: sp.csr_matrix, vertices: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` vertices of geodesic farthest-point sampling (see the module doc)."""
    centroid = vertices.mean(axis=0)
    first = int(np.argmin(np.linalg.norm(vertices - centroid, axis=1)))
    nearest = np.full(len(vertices), np.inf)
    order = [first]
    for _ in range(count - 1):
        # only vertices closer than the current covering radius can change
        radius = float(nearest.max()) if np.isfinite(nearest).all() else np.inf
        dist = dijkstra(graph, directed=False, indices=order[-1], limit=radius)
        np.minimum(nearest, dist, out=nearest)
        order.append(int(np.argmax(nearest)))
    return np.asarray(order, dtype=np.int64)


def _nearest_kept(graph: sp.csr_matrix, kept: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For every vertex its ``k`` geodesically nearest kept vertices: ``(dist (V, k), which
    (V, k))`` (``which`` indexes ``kept``), nearest first, ties by index."""
    total = graph.shape[0]
    best_d = np.full((total, k), np.inf)
    best_i = np.zeros((total, k), dtype=np.int64)
    for start in range(0, len(kept), 128):
        chunk = kept[start:start + 128]
        dist = dijkstra(graph, directed=False, indices=chunk).T  # (V, c)
        d = np.concatenate([best_d, dist], axis=1)
        i = np.concatenate([best_i, np.arange(start, start + len(chunk))[None].repeat(total, 0)], axis=1)
        pick = np.argsort(d, axis=1, kind="stable")[:, :k]  # earlier columns hold lower indices
        best_d = np.take_along_axis(d, pick, 1)
        best_i = np.take_along_axis(i, pick, 1)
    return best_d, best_i


def _level(graph: sp.csr_matrix, kept: np.ndarray, edges: np.ndarray) -> MeshLevel:
    total, n = graph.shape[0], len(kept)
    dist, which = _nearest_kept(graph, kept, UP_NEIGHBOURS)
    owner = which[:, 0]
    a, b = owner[edges[:, 0]], owner[edges[:, 1]]
    cross = a != b
    adj = sp.coo_matrix((np.ones(cross.sum()), (a[cross], b[cross])), shape=(n, n)).tocsr()
    adj = ((adj + adj.T) > 0).astype(np.float64).tocsr()
    with np.errstate(divide="ignore"):
        weights = np.where(np.isfinite(dist), 1.0 / np.maximum(dist, 1e-12), 0.0)
    exact = dist[:, 0] <= 1e-12  # a kept vertex (or one at its place) maps to it alone
    weights[exact] = 0.0
    weights[exact, 0] = 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(total), UP_NEIGHBOURS)
    up = sp.coo_matrix((weights.ravel(), (rows, which.ravel())), shape=(total, n)).tocsr()
    up.eliminate_zeros()
    return MeshLevel(vertex_ids=kept, adjacency=adj, up=up)


def compute_mesh_hierarchy(vertices: np.ndarray, faces: np.ndarray, levels: int = 2) -> list[MeshLevel]:
    """Levels 1..``levels`` of the mesh ``vertices (V, 3)``, ``faces (F, 3)`` (no cache)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise BodyModelError(f"mesh needs vertices (V, 3) and faces (F, 3), got {vertices.shape}, {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise BodyModelError("mesh faces index vertices that do not exist")
    graph = edge_graph(vertices, faces)
    edges = np.stack(graph.nonzero(), axis=1)
    order = farthest_point_order(graph, vertices, level_size(len(vertices), 1))
    return [_level(graph, order[:level_size(len(vertices), lv)], edges) for lv in range(1, levels + 1)]


def _cache_key(vertices: np.ndarray, faces: np.ndarray, levels: int) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(f"v{VERSION} levels={levels} k={UP_NEIGHBOURS}".encode())
    h.update(np.ascontiguousarray(vertices, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
    return h.hexdigest()


def _save(path: Path, hierarchy: list[MeshLevel]) -> None:
    from hmr.core.utils.atomic import atomic_path

    arrays = {}
    for i, lv in enumerate(hierarchy):
        adj, up = lv.adjacency.tocoo(), lv.up.tocoo()
        arrays.update({f"l{i}_ids": lv.vertex_ids, f"l{i}_adj": np.stack([adj.row, adj.col]).astype(np.int64),
                       f"l{i}_up_idx": np.stack([up.row, up.col]).astype(np.int64), f"l{i}_up_w": up.data,
                       f"l{i}_shape": np.array(up.shape, dtype=np.int64)})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, levels=np.array(len(hierarchy)), **arrays)


def _load(path: Path) -> list[MeshLevel]:
    with np.load(path, allow_pickle=False) as z:
        out = []
        for i in range(int(z["levels"])):
            total, n = (int(x) for x in z[f"l{i}_shape"])
            adj_idx, up_idx = z[f"l{i}_adj"], z[f"l{i}_up_idx"]
            adj = sp.csr_matrix((np.ones(adj_idx.shape[1]), (adj_idx[0], adj_idx[1])), shape=(n, n))
            up = sp.csr_matrix((z[f"l{i}_up_w"], (up_idx[0], up_idx[1])), shape=(total, n))
            out.append(MeshLevel(vertex_ids=z[f"l{i}_ids"].astype(np.int64), adjacency=adj, up=up))
    return out


def mesh_hierarchy(vertices: np.ndarray, faces: np.ndarray, levels: int = 2,
                   cache: bool = True) -> list[MeshLevel]:
    """:func:`compute_mesh_hierarchy`, cached under ``$HMR_CACHE/mesh_sampling/`` (a damaged
    cache file is recomputed and replaced)."""
    if not cache:
        return compute_mesh_hierarchy(vertices, faces, levels)
    from hmr.core.body.smpl import cache_dir

    path = cache_dir() / "mesh_sampling" / f"{_cache_key(vertices, faces, levels)}.npz"
    if path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError):
            pass
    hierarchy = compute_mesh_hierarchy(vertices, faces, levels)
    _save(path, hierarchy)
    return hierarchy


def normalised_adjacency(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """GraphCMR's graph-convolution matrix: self loops added, each row divided by its number
    of entries (``adjmat_sparse`` in ``nkolot/GraphCMR`` ``utils/mesh.py``)."""
    a = ((adjacency + sp.eye(adjacency.shape[0])) > 0).astype(np.float64)
    return sp.diags(1.0 / np.asarray(a.sum(axis=1)).ravel()) @ a
