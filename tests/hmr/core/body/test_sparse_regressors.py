"""BodyModel's own LBS and sparse joint regressors give smplx's and the dense products' numbers."""

from __future__ import annotations

import pytest
import torch

from hmr.core.geometry import axis_angle_to_matrix


def _inputs(batch: int, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(batch, 3, generator=g, dtype=dtype),
            0.4 * torch.randn(batch, 69, generator=g, dtype=dtype),
            torch.randn(batch, 10, generator=g, dtype=dtype),
            torch.randn(batch, 3, generator=g, dtype=dtype))


@pytest.mark.parametrize("rotmats", [False, True])
def test_forward_matches_smplx_direct(neutral_model, rotmats):
    orient, pose, betas, transl = _inputs(3)
    ref = neutral_model.smpl(global_orient=orient, body_pose=pose, betas=betas, transl=transl,
                             return_verts=True)
    if rotmats:
        rot = axis_angle_to_matrix(torch.cat([orient, pose], 1).reshape(3, 24, 3))
        orient, pose = rot[:, :1], rot[:, 1:]
    out = neutral_model(orient, pose, betas, transl)
    torch.testing.assert_close(out.vertices, ref.vertices, rtol=0, atol=2e-6)
    torch.testing.assert_close(out.joints_smpl45, ref.joints, rtol=0, atol=2e-6)
    # A changed pose really changes the output (the comparison can fail).
    other = neutral_model(orient, pose, betas + 0.5, transl)
    assert (other.vertices - ref.vertices).abs().max() > 1e-3


def test_gradients_match_smplx_direct(neutral_model):
    orient, pose, betas, transl = _inputs(2, seed=1)
    grads = []
    for direct in (True, False):
        o, p, b = (t.clone().requires_grad_() for t in (orient, pose, betas))
        if direct:
            verts = neutral_model.smpl(global_orient=o, body_pose=p, betas=b, transl=transl).vertices
        else:
            verts = neutral_model(o, p, b, transl).vertices
        (verts * torch.linspace(-1, 1, verts.numel()).reshape(verts.shape)).sum().backward()
        grads.append([o.grad, p.grad, b.grad])
    for mine, ref in zip(grads[1], grads[0]):
        # Float32 sums over 20,670 coordinates in another order: equal to 1e-5 of the scale.
        scale = float(ref.abs().max())
        assert scale > 0 and float((mine - ref).abs().max()) <= 1e-5 * scale


def test_single_betas_row_broadcasts(neutral_model):
    orient, pose, betas, _ = _inputs(3, seed=2)
    one = neutral_model(orient, pose, betas[:1]).vertices
    full = neutral_model(orient, pose, betas[:1].expand(3, -1)).vertices
    torch.testing.assert_close(one, full, rtol=0, atol=0)


def test_sparse_regressors_equal_the_dense_products(neutral_model):
    orient, pose, betas, transl = _inputs(4, seed=3)
    out = neutral_model(orient, pose, betas, transl)
    extra = torch.einsum("jv,bvc->bjc", neutral_model.j_regressor_extra, out.vertices)
    h36m = torch.einsum("jv,bvc->bjc", neutral_model.j_regressor_h36m, out.vertices)
    torch.testing.assert_close(out.joints_extra9, extra, rtol=0, atol=2e-6)
    torch.testing.assert_close(out.joints_h36m17, h36m, rtol=0, atol=2e-6)
    columns, weights = neutral_model._sparse_regressors(
        (neutral_model.j_regressor_extra, neutral_model.j_regressor_h36m))
    assert weights.shape == (26, len(columns)) and len(columns) < out.vertices.shape[1] // 2


def test_replaced_or_removed_regressors_are_followed(neutral_model):
    orient, pose, betas, _ = _inputs(2, seed=4)
    extra, h36m = neutral_model.j_regressor_extra, neutral_model.j_regressor_h36m
    try:
        neutral_model.j_regressor_extra = None
        out = neutral_model(orient, pose, betas)
        assert out.joints_extra9 is None and out.joints_spin49 is None
        torch.testing.assert_close(out.joints_h36m17,
                                   torch.einsum("jv,bvc->bjc", h36m, out.vertices), rtol=0, atol=2e-6)
        shifted = torch.roll(h36m, 7, dims=1)  # other columns: the cache must be rebuilt
        neutral_model.j_regressor_h36m = shifted
        out = neutral_model(orient, pose, betas)
        torch.testing.assert_close(out.joints_h36m17,
                                   torch.einsum("jv,bvc->bjc", shifted, out.vertices), rtol=0, atol=2e-6)
        neutral_model.j_regressor_h36m = None
        out = neutral_model(orient, pose, betas)
        assert out.joints_h36m17 is None and out.joints_extra9 is None
    finally:
        neutral_model.j_regressor_extra, neutral_model.j_regressor_h36m = extra, h36m
    out = neutral_model(orient, pose, betas)
    torch.testing.assert_close(out.joints_extra9,
                               torch.einsum("jv,bvc->bjc", extra, out.vertices), rtol=0, atol=2e-6)
