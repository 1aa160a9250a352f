"""JointsOnlyBody: the body model's joints from the vertex subset the regressors read."""

from __future__ import annotations

import pytest
import torch

from hmr.core.body.joints_only import JointsOnlyBody
from hmr.core.geometry import axis_angle_to_matrix


def _params(n: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"global_orient": 0.8 * torch.randn(n, 3, generator=g), "body_pose": 0.5 * torch.randn(n, 69, generator=g),
            "betas": torch.randn(n, 10, generator=g), "transl": torch.randn(n, 3, generator=g)}


@pytest.mark.parametrize("rotmat", [False, True])
def test_joint_sets_match_the_full_body_model(neutral_model, rotmat):
    p = _params(5)
    if rotmat:
        p["global_orient"] = axis_angle_to_matrix(p["global_orient"])[:, None]  # (B, 1, 3, 3)
        p["body_pose"] = axis_angle_to_matrix(p["body_pose"].reshape(5, 23, 3))  # (B, 23, 3, 3)
    with torch.no_grad():
        full = neutral_model(**p)
        sparse = JointsOnlyBody(neutral_model)(**p)
    assert sparse.vertices is None
    for name in ("joints_smpl24", "joints_smpl45", "joints_extra9", "joints_spin49", "joints_h36m17"):
        torch.testing.assert_close(getattr(sparse, name), getattr(full, name), atol=2e-5, rtol=0, msg=name)


def test_gradients_match_and_the_subset_is_small(neutral_model):
    p = _params(3, seed=1)
    grads = []
    for model in (neutral_model, JointsOnlyBody(neutral_model)):
        q = {k: v.clone().requires_grad_() for k, v in p.items()}
        out = model(**q)
        (out.joints_spin49.square().sum() + out.joints_h36m17.sum()).backward()
        grads.append([q[k].grad for k in ("global_orient", "body_pose", "betas", "transl")])
    for full, sparse in zip(*grads):
        torch.testing.assert_close(sparse, full, atol=1e-4, rtol=1e-4)
    n_verts = neutral_model.v_template.shape[0]
    assert JointsOnlyBody(neutral_model).num_vertices < n_verts // 3
    assert JointsOnlyBody(neutral_model, h36m=False).num_vertices < JointsOnlyBody(neutral_model).num_vertices


def test_missing_regressors_give_none_like_the_body_model(neutral_model):
    extra, h36m = neutral_model.j_regressor_extra, neutral_model.j_regressor_h36m
    try:
        neutral_model.j_regressor_extra = neutral_model.j_regressor_h36m = None
        p = _params(2, seed=2)
        with torch.no_grad():
            full, sparse = neutral_model(**p), JointsOnlyBody(neutral_model)(**p)
    finally:
        neutral_model.j_regressor_extra, neutral_model.j_regressor_h36m = extra, h36m
    assert sparse.joints_spin49 is None and sparse.joints_h36m17 is None and full.joints_spin49 is None
    torch.testing.assert_close(sparse.joints_smpl45, full.joints_smpl45, atol=2e-5, rtol=0)
