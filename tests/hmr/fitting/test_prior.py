import pickle

import numpy as np
import pytest
import torch

from hmr.core.errors import BodyModelError, UnsafePickleError
from hmr.fitting.prior import (GaussianMixture, MixturePosePrior, angle_prior, find_pose_prior, fit_gmm,
                               load_gmm, load_pose_prior, save_gmm, shape_prior)


def test_em_recovers_a_known_mixture():
    rng = np.random.default_rng(0)
    a = rng.normal([3.0, 0.0, 0.0], 0.3, size=(600, 3))
    b = rng.normal([-3.0, 1.0, 0.0], [0.5, 0.2, 0.2], size=(200, 3))
    gmm, ll = fit_gmm(np.r_[a, b], 2, iters=50, reg=1e-6, seed=0)
    order = np.argsort(-gmm.weights)
    np.testing.assert_allclose(gmm.weights[order], [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(gmm.means[order[0]], [3, 0, 0], atol=0.1)
    np.testing.assert_allclose(np.sqrt(np.diag(gmm.covars[order[1]])), [0.5, 0.2, 0.2], atol=0.06)
    assert np.isfinite(ll)


def _gmm(m=2, d=69):
    rng = np.random.default_rng(1)
    return {"means": rng.normal(size=(m, d)), "covars": np.stack([np.eye(d) * (k + 1) for k in range(m)]),
            "weights": np.full(m, 1.0 / m)}


def test_published_pickle_layout_is_read_restricted(tmp_path):
    path = tmp_path / "gmm_08.pkl"
    path.write_bytes(pickle.dumps(_gmm(), protocol=2))
    gmm = load_gmm(path)
    assert gmm.means.shape == (2, 69) and gmm.covars.shape == (2, 69, 69)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(UnsafePickleError, match="os.system"):
        load_gmm(evil)


def test_npz_round_trip_and_shape_errors(tmp_path):
    gmm = GaussianMixture(**_gmm())
    path = save_gmm(gmm, tmp_path / "p.npz")
    np.testing.assert_array_equal(load_gmm(path).covars, gmm.covars)
    bad = dict(_gmm())
    bad["weights"] = np.ones(3)
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(BodyModelError, match="weights"):
        load_gmm(tmp_path / "bad.npz")
    np.savez(tmp_path / "d3.npz", **_gmm(d=3))
    with pytest.raises(BodyModelError, match="69"):
        load_pose_prior(tmp_path / "d3.npz")


def test_max_mixture_cost_is_zero_at_the_best_mean_and_grows():
    prior = MixturePosePrior(GaussianMixture(**_gmm()), dtype=torch.float64)
    means = torch.as_tensor(_gmm()["means"])
    cost = prior(means)
    assert cost.min().item() == pytest.approx(0.0, abs=1e-9)
    assert (prior(means + 0.5) > cost).all()


def test_fitted_prior_prefers_sampler_poses_to_implausible_ones(pose_prior):
    from hmr.synth.poses import PoseSampler

    plausible = torch.from_numpy(PoseSampler().sample(np.random.default_rng(7), 64)["body_pose"])
    implausible = torch.from_numpy(np.random.default_rng(8).uniform(-1.5, 1.5, (64, 69)).astype(np.float32))
    assert pose_prior(plausible).median() * 5 < pose_prior(implausible).median()


def test_angle_prior_penalises_backward_elbows_and_knees():
    pose = torch.zeros(4, 69)
    pose[1, 3 * 17 + 1] = -1.0  # left elbow bent the natural way
    pose[2, 3 * 17 + 1] = 1.0  # ... and backwards
    pose[3, 3 * 3] = -1.0  # left knee backwards
    cost = angle_prior(pose)
    assert cost[1] < cost[0] < cost[2] and cost[3] > cost[0]
    assert shape_prior(torch.ones(2, 10)).tolist() == [10.0, 10.0]


def test_published_prior_next_to_the_body_model_wins(tmp_path, monkeypatch, prior_path):
    (tmp_path / "smpl").mkdir()
    (tmp_path / "gmm_08.pkl").write_bytes(pickle.dumps(_gmm(), protocol=2))
    monkeypatch.setenv("HMR_BODY_MODEL", str(tmp_path))
    assert find_pose_prior() == tmp_path / "gmm_08.pkl"
    assert find_pose_prior(prior_path) == prior_path
    with pytest.raises(BodyModelError):
        find_pose_prior(tmp_path / "missing.pkl")
