"""Our GraphCMR mesh sampling: sizes, determinism, the cache, and down-then-up on smooth meshes."""

import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.models import mesh_sampling
from hmr.models.mesh_sampling import compute_mesh_hierarchy, level_size, mesh_hierarchy, normalised_adjacency


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def hierarchy(body):
    return mesh_hierarchy(body.v_template.numpy(), body.faces, levels=2)


def test_sizes_match_graphcmr(body, hierarchy):
    assert [level_size(6890, lv) for lv in (1, 2)] == [1723, 431]
    fine, coarse = hierarchy
    assert len(fine.vertex_ids) == 1723 and len(coarse.vertex_ids) == 431
    assert fine.up.shape == (6890, 1723) and coarse.up.shape == (6890, 431)
    assert len(np.unique(fine.vertex_ids)) == 1723
    # nested: the 16x level keeps a subset (the first vertices) of the 4x level
    assert np.array_equal(coarse.vertex_ids, fine.vertex_ids[:431])


def test_matrices_are_sane(hierarchy):
    for lv in hierarchy:
        n = len(lv.vertex_ids)
        adj = lv.adjacency
        assert (adj != adj.T).nnz == 0 and adj.diagonal().sum() == 0
        degree = np.asarray(adj.sum(axis=1)).ravel()
        assert degree.min() >= 2 and 5 < degree.mean() < 7  # a triangulated surface: ~6 neighbours
        assert np.allclose(np.asarray(lv.up.sum(axis=1)).ravel(), 1.0)
        assert lv.up.min() >= 0 and max(np.diff(lv.up.indptr)) <= mesh_sampling.UP_NEIGHBOURS
        assert np.allclose((lv.down @ lv.up).toarray(), np.eye(n))
        a = normalised_adjacency(adj)
        assert np.allclose(np.asarray(a.sum(axis=1)).ravel(), 1.0) and np.allclose(a.diagonal(), 1.0 / (degree + 1))


def test_down_then_up_reproduces_smooth_meshes(body, hierarchy):
    fine, coarse = hierarchy
    rng = np.random.default_rng(0)
    aa = torch.as_tensor(rng.normal(0, 0.3, (4, 72)), dtype=torch.float32)
    verts = body(global_orient=aa[:, :3], body_pose=aa[:, 3:], betas=torch.as_tensor(
        rng.normal(0, 1, (4, 10)), dtype=torch.float32)).vertices.numpy()
    for lv, mean_mm, max_mm in ((fine, 8.0, 60.0), (coarse, 20.0, 100.0)):
        for v in verts:
            err = np.linalg.norm(lv.up @ (lv.down @ v) - v, axis=1) * 1000
            assert err.mean() < mean_mm and err.max() < max_mm, (len(lv.vertex_ids), err.mean(), err.max())
    # a function linear in space is reproduced much better than a random one
    noise = rng.normal(0, 0.01, (6890, 3))
    assert np.abs(fine.up @ (fine.down @ noise) - noise).mean() > 0.005


def test_deterministic_and_cached(tmp_path, monkeypatch, body, hierarchy):
    v, f = body.v_template.numpy(), body.faces
    # a small piece of the body: fast to compute twice from scratch
    keep = np.where(v[:, 1] > 0.3)[0]  # the head and shoulders
    faces = f[np.isin(f, keep).all(axis=1)]
    remap = np.full(len(v), -1)
    remap[keep] = np.arange(len(keep))
    part_v, part_f = v[keep], remap[faces]
    a = compute_mesh_hierarchy(part_v, part_f, levels=2)
    b = compute_mesh_hierarchy(part_v, part_f, levels=2)
    for x, y in zip(a, b):
        assert np.array_equal(x.vertex_ids, y.vertex_ids)
        assert (x.up != y.up).nnz == 0 and (x.adjacency != y.adjacency).nnz == 0
    monkeypatch.setenv("HMR_CACHE", str(tmp_path))
    first = mesh_hierarchy(part_v, part_f, levels=2)
    files = list((tmp_path / "mesh_sampling").glob("*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(mesh_sampling, "compute_mesh_hierarchy", lambda *a, **k: pytest.fail("not cached"))
    again = mesh_hierarchy(part_v, part_f, levels=2)
    for x, y in zip(first, again):
        assert np.array_equal(x.vertex_ids, y.vertex_ids) and abs(x.up - y.up).max() == 0


def test_bad_meshes_are_refused():
    from hmr.core.errors import BodyModelError

    with pytest.raises(BodyModelError, match="faces"):
        compute_mesh_hierarchy(np.zeros((4, 3)), np.array([[0, 1, 7]]))
