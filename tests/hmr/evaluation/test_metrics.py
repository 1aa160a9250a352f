"""Metric functions against hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr.evaluation.metrics import balanced_summary, mesh_rarity, mpjpe, pa_mpjpe, pooled_mean, pve, rarity_bins

GT = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]], dtype=torch.float64)


def test_mpjpe_constant_offset():
    pred = GT + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    assert mpjpe(pred, GT).item() == pytest.approx(5.0)


def test_scaled_prediction_known_mpjpe_and_zero_pa_mpjpe():
    # errors 1, 2, 3 → MPJPE 2; a pure scaling is undone by Procrustes
    pred = 2.0 * GT
    assert mpjpe(pred, GT).item() == pytest.approx(2.0)
    assert pa_mpjpe(pred, GT).item() == pytest.approx(0.0, abs=1e-9)


def test_rotation_scale_translation_gives_zero_pa_mpjpe():
    rng = np.random.default_rng(0)
    gt = torch.from_numpy(rng.normal(size=(5, 14, 3)) * 300)
    rot = torch.from_numpy(Rotation.from_rotvec(rng.normal(size=(5, 3))).as_matrix())
    pred = 0.7 * gt @ rot.transpose(1, 2) + torch.from_numpy(rng.normal(size=(5, 1, 3)) * 100)
    np.testing.assert_allclose(pa_mpjpe(pred, gt).numpy(), 0.0, atol=1e-8)
    assert (mpjpe(pred, gt) > 10).all()


def test_rotation_about_the_root_known_mpjpe():
    # a 90° turn about z of points at distance r from the root moves each by r·√2
    pts = torch.tensor([[[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 0.0, 50.0]]], dtype=torch.float64)
    rot = torch.from_numpy(Rotation.from_rotvec([0, 0, math.pi / 2]).as_matrix())
    pred = pts @ rot.T
    expected = (0 + 100 * math.sqrt(2) + 0) / 3
    assert mpjpe(pred, pts).item() == pytest.approx(expected)
    assert pa_mpjpe(pred, pts).item() == pytest.approx(0.0, abs=1e-9)


def test_masked_joints_are_ignored_by_error_and_alignment():
    pred = GT.clone().repeat(1, 2, 1)  # 6 joints
    gt = pred.clone()
    pred[0, 5, 0] += 1000.0  # the masked joint is wildly off
    mask = torch.tensor([[True] * 5 + [False]])
    assert mpjpe(pred, gt, mask).item() == pytest.approx(0.0)
    assert pa_mpjpe(pred, gt, mask).item() == pytest.approx(0.0, abs=1e-9)
    assert mpjpe(pred, gt).item() == pytest.approx(1000.0 / 6)


def test_pve_and_rarity():
    gt = torch.zeros(2, 4, 3)
    pred = gt.clone()
    pred[0, :, 0] = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3
    assert pve(pred, gt).tolist() == pytest.approx([3.0, 0.0])
    mean_mesh = torch.zeros(4, 3)
    mean_mesh[:, 1] = 2.0
    assert mesh_rarity(pred, mean_mesh).tolist() == pytest.approx([np.mean(np.hypot([1, 2, 3, 6], 2)), 2.0])


def test_pooled_mean_weights_by_valid_joints():
    assert pooled_mean(np.array([10.0, 20.0]), np.array([1, 3])) == pytest.approx(17.5)
    assert pooled_mean(np.array([10.0, 20.0])) == pytest.approx(15.0)


def test_balanced_summary_hand_made_bins():
    # range [0, 4] in 4 bins: [0,1) {0,0,0}, [1,2) {1}, [2,3) {2}, [3,4] {3,4}
    rarity = np.array([0, 0, 0, 1, 2, 3, 4], dtype=float)
    errors = np.array([1, 1, 1, 10, 20, 30, 40], dtype=float)
    s = balanced_summary(errors, rarity, num_bins=4, tails_percent=(30, 10))
    assert s.bin_counts.tolist() == [3, 1, 1, 2]
    assert s.bin_means.tolist() == pytest.approx([1, 10, 20, 35])
    assert s.all == pytest.approx((1 + 10 + 20 + 35) / 4)
    assert s.tails[30] == pytest.approx(35.0)  # int(7 · 0.3) = 2 rarest: errors 40, 30
    assert s.tail_sizes == {30: 2, 10: 0} and math.isnan(s.tails[10])


def test_balanced_all_skips_empty_bins_and_differs_from_plain_mean():
    rarity = np.array([0.0, 0.0, 0.0, 4.0])
    errors = np.array([10.0, 10.0, 10.0, 50.0])
    s = balanced_summary(errors, rarity, num_bins=4)
    assert s.bin_counts.tolist() == [3, 0, 0, 1]
    assert s.all == pytest.approx(30.0) and errors.mean() == pytest.approx(20.0)


def test_rarity_bins_edges_and_degenerate_range():
    index, edges = rarity_bins(np.array([2.0, 2.5, 3.0]), num_bins=2)
    assert edges.tolist() == [2.0, 2.5, 3.0] and index.tolist() == [0, 1, 1]
    index, _ = rarity_bins(np.array([1.0, 1.0]), num_bins=100)
    assert index.tolist() == [0, 0]
    with pytest.raises(ValueError):
        balanced_summary(np.zeros(3), np.zeros(2))
