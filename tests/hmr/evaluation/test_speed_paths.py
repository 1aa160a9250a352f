"""The fast metric path: regressed joints without meshes, ground truth posed once per store."""

import shutil

import numpy as np
import pytest
import torch

from hmr.core.geometry import axis_angle_to_matrix
from hmr.core.schema.store import open_store
from hmr.evaluation import get_benchmark, score_predictions
from hmr.evaluation.benchmarks import clear_ground_truth_cache, ground_truth
from hmr.evaluation.regressed_joints import RegressedJoints, regressed_joints_for
from hmr.evaluation.run import BodyModels
from tests.fixtures.training import write_test_store


@pytest.fixture(scope="module")
def models():
    return BodyModels(None, torch.device("cpu"))


class ForwardCounter:
    """Counts full body-model passes (``forward`` calls) of every gender's model."""

    def __init__(self, models):
        self.calls = 0
        self.handles = [models(g).register_forward_hook(self._hook) for g in ("neutral", "male", "female")]

    def _hook(self, *args):
        self.calls += 1

    def close(self):
        for h in self.handles:
            h.remove()


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_regressed_joints_equal_the_mesh_joints(models, gender):
    model = models(gender)
    g = torch.Generator().manual_seed(1)
    rot = axis_angle_to_matrix(0.5 * torch.randn(64, 24, 3, generator=g))
    betas = torch.randn(64, 10, generator=g)
    with torch.no_grad():
        mesh = model(global_orient=rot[:, :1], body_pose=rot[:, 1:], betas=betas, pose2rot=False).joints_h36m17
        fast = RegressedJoints(model)(rot, betas)
    assert fast.shape == (64, 17, 3) and fast.dtype == torch.float32
    np.testing.assert_allclose(fast.numpy(), mesh.double().numpy(), atol=2e-6)  # metres: float32 rounding
    assert regressed_joints_for(model) is regressed_joints_for(model)


def test_ground_truth_is_posed_once_per_store_content(tmp_path, models):
    clear_ground_truth_cache()
    path, params = write_test_store(tmp_path / "pw3d.zarr", models("neutral"), dataset="3dpw", genders=(1, 2), n=9)
    store, bench = open_store(path), get_benchmark("3dpw")
    rows = np.arange(9)
    reference = torch.zeros(6890, 3)
    aa = torch.cat([params["global_orient"], params["body_pose"]], 1).reshape(-1, 24, 3)
    rot = axis_angle_to_matrix(aa + 0.05)
    counter = ForwardCounter(models)
    try:
        cold = score_predictions(bench, store, rows, rot, params["betas"], models, mean_vertices=reference,
                                 batch_size=4, with_pve=False)
        assert counter.calls > 0  # the GT meshes (two genders, three batches)
        counter.calls = 0
        warm = score_predictions(bench, store, rows, rot, params["betas"], models, mean_vertices=reference,
                                 batch_size=4, with_pve=False)
        assert counter.calls == 0  # no body-model pass at all: cached GT, regressed predicted joints
        with_pve = score_predictions(bench, store, rows, rot, params["betas"], models, mean_vertices=reference,
                                     batch_size=4)
        assert counter.calls == 5  # PVE poses only the predictions, per batch and gender: 2 + 2 + 1
    finally:
        counter.close()
    for name in ("mpjpe_mm", "pa_mpjpe_mm", "rarity_mm", "pck", "auc"):
        np.testing.assert_array_equal(getattr(cold, name), getattr(warm, name))
    uncached = score_predictions(bench, store, rows, rot, params["betas"], models, mean_vertices=reference,
                                 cache=False)
    np.testing.assert_allclose(uncached.mpjpe_mm, warm.mpjpe_mm, atol=1e-4)  # mm; float32 meshes, other batches
    np.testing.assert_allclose(uncached.pve_mm, with_pve.pve_mm, atol=1e-4)
    gt = ground_truth(bench, store, rows, models, mean_vertices=reference)
    assert gt is ground_truth(bench, store, rows, models, mean_vertices=reference)
    assert gt.vertices is not None and gt.vertices.shape == (9, 6890, 3)
    # Same path, other content: the cache is keyed by what the store holds, not by its name.
    shutil.rmtree(path)
    write_test_store(path, models("neutral"), dataset="3dpw", genders=(1, 2), n=9, seed=5)
    assert ground_truth(bench, open_store(path), rows, models, mean_vertices=reference) is not gt
