"""FastMesh (batched float32 posing for PVE) against the body model's own forward pass."""

import numpy as np
import pytest
import torch

from hmr.core.geometry import axis_angle_to_matrix
from hmr.core.schema.store import open_store
from hmr.evaluation import get_benchmark, score_predictions
from hmr.evaluation.benchmarks import clear_ground_truth_cache
from hmr.evaluation.fast_mesh import FastMesh, fast_mesh_for
from hmr.evaluation.metrics import pve
from hmr.evaluation.run import BodyModels
from tests.fixtures.training import write_test_store

# Bounds: 10x the largest difference measured on 1,024 random bodies (6e-7 m per vertex,
# 9e-5 mm per-sample PVE at ~107 mm): float32 rounding of sums over 217 blend shapes and
# 24 bones in another order. A wrong blend shape, bone or weight moves vertices by mm.
VERTEX_ATOL_M = 5e-6
PVE_ATOL_MM = 1e-3


@pytest.fixture(scope="module")
def models():
    return BodyModels(None, torch.device("cpu"))


def _bodies(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    aa = 0.5 * torch.randn(n, 24, 3, generator=g)
    return axis_angle_to_matrix(aa), torch.randn(n, 10, generator=g)


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_fast_mesh_equals_the_forward_pass(models, gender):
    model = models(gender)
    rot, betas = _bodies(200, 1)
    gt_rot, gt_betas = _bodies(200, 2)
    fast = FastMesh(model, vertex_chunk=300, batch=64)  # uneven chunks and batches
    with torch.no_grad():
        ref = model(global_orient=rot[:, :1], body_pose=rot[:, 1:], betas=betas, pose2rot=False).vertices
        gt = model(global_orient=gt_rot[:, :1], body_pose=gt_rot[:, 1:], betas=gt_betas, pose2rot=False).vertices
        verts = fast(rot, betas)
        errors = fast.pve(rot, betas, gt) * 1000.0
    assert verts.shape == ref.shape and verts.dtype == torch.float32
    np.testing.assert_allclose(verts.numpy(), ref.numpy(), atol=VERTEX_ATOL_M)
    expected = (pve(ref.double(), gt.double()) * 1000.0).numpy()
    assert errors.shape == (200,) and expected.min() > 10.0  # far from zero: a real comparison
    np.testing.assert_allclose(errors.double().numpy(), expected, atol=PVE_ATOL_MM)
    assert fast_mesh_for(model) is fast_mesh_for(model)


def test_fast_mesh_pads_and_cuts_betas(models):
    model = models("neutral")
    rot, betas = _bodies(8, 3)
    fast = fast_mesh_for(model)
    with torch.no_grad():
        five = model(global_orient=rot[:, :1], body_pose=rot[:, 1:], betas=torch.cat([betas[:, :5], torch.zeros(8, 5)], 1),
                     pose2rot=False).vertices
        np.testing.assert_allclose(fast(rot, betas[:, :5]).numpy(), five.numpy(), atol=VERTEX_ATOL_M)
        np.testing.assert_allclose(fast(rot, torch.cat([betas, torch.ones(8, 6)], 1)).numpy(),
                                   fast(rot, betas).numpy(), atol=0)


@pytest.mark.parametrize("convention", ["gendered", "neutral"])
def test_score_predictions_pve_fast_equals_generic(tmp_path, models, monkeypatch, convention):
    """The whole PVE path (genders mixed) gives the generic path's per-sample PVE."""
    clear_ground_truth_cache()
    path, params = write_test_store(tmp_path / "pw3d.zarr", models("neutral"), dataset="3dpw", genders=(1, 2), n=12)
    store, bench = open_store(path), get_benchmark("3dpw")
    aa = torch.cat([params["global_orient"], params["body_pose"]], 1).reshape(-1, 24, 3)
    rot = axis_angle_to_matrix(aa + 0.1)
    betas = params["betas"] + 0.3
    rows = np.arange(12)
    calls = []
    monkeypatch.setattr(FastMesh, "pve", lambda self, *a, _pve=FastMesh.pve: calls.append(1) or _pve(self, *a))
    fast = score_predictions(bench, store, rows, rot, betas, models, pve_convention=convention, batch_size=5,
                             fast_pve=True).pve_mm
    assert len(calls) == (6 if convention == "gendered" else 3)  # per batch (5 + 5 + 2) and gender
    generic = score_predictions(bench, store, rows, rot, betas, models, pve_convention=convention).pve_mm
    assert len(calls) == (6 if convention == "gendered" else 3)  # the default: the forward pass
    clear_ground_truth_cache()
    assert generic.min() > 1.0
    np.testing.assert_allclose(fast, generic, atol=PVE_ATOL_MM)
