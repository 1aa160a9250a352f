"""Training-label distributions: EM Gaussian mixture and histogram buckets."""

import numpy as np
import pytest

from hmr.losses import fit_label_gmm, label_histogram


def test_gmm_recovers_a_bimodal_1d_mixture():
    rng = np.random.default_rng(0)
    comp = rng.random(20_000) < 0.3
    labels = np.where(comp, rng.normal(-3.0, 0.5, comp.size), rng.normal(2.0, 1.0, comp.size))
    gmm = fit_label_gmm(labels, 2, seed=1)
    order = np.argsort(gmm.means[:, 0])
    np.testing.assert_allclose(gmm.means[order, 0], [-3.0, 2.0], atol=0.05)
    np.testing.assert_allclose(np.sqrt(gmm.covariances[order, 0, 0]), [0.5, 1.0], atol=0.05)
    np.testing.assert_allclose(gmm.weights[order], [0.3, 0.7], atol=0.02)
    # The fitted density integrates to one.
    grid = np.linspace(-10, 10, 20_001)
    assert np.trapezoid(np.exp(gmm.log_pdf(grid)), grid) == pytest.approx(1.0, abs=1e-4)


def test_gmm_one_component_is_the_sample_mean_and_ml_covariance():
    rng = np.random.default_rng(1)
    labels = rng.multivariate_normal([1.0, -2.0, 0.5], [[1, .5, 0], [.5, 2, .3], [0, .3, .5]], 3000)
    gmm = fit_label_gmm(labels, 1)
    np.testing.assert_allclose(gmm.means[0], labels.mean(0), atol=1e-9)
    np.testing.assert_allclose(gmm.covariances[0], np.cov(labels.T, bias=True), atol=1e-5)
    assert gmm.as_dict()["variances"].shape == (1, 3, 3) and gmm.dim == 3


def test_gmm_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        fit_label_gmm(np.array([1.0, np.nan, 2.0]), 1)
    with pytest.raises(ValueError, match="cannot fit"):
        fit_label_gmm(np.zeros((2, 1)), 3)


def test_histogram_1d_drops_empty_bins_and_normalises():
    labels = np.array([0.1, 0.2, 0.9, 2.5, 2.6, 2.7])
    hist = label_histogram(labels, bins=np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(hist.centers[:, 0], [0.5, 2.5])  # bin [1, 2) is empty
    np.testing.assert_allclose(hist.weights, [0.5, 0.5])
    assert hist.dim == 1


def test_histogram_2d_cells():
    labels = np.array([[0.1, 0.1], [0.2, 0.1], [0.9, 0.9]])
    hist = label_histogram(labels, bins=2, range_=[(0.0, 1.0), (0.0, 1.0)])
    np.testing.assert_allclose(hist.centers, [[0.25, 0.25], [0.75, 0.75]])
    np.testing.assert_allclose(hist.weights, [2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="no label"):
        label_histogram(labels, bins=2, range_=[(5.0, 6.0), (5.0, 6.0)])
