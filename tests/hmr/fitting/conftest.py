"""Session fixtures of the fitting tests: one body model, one small EM prior, one synth store."""

from __future__ import annotations

import pytest

from tests.fixtures.fitting import small_prior, synth_store


@pytest.fixture(scope="session")
def body_model():
    from hmr.core.body import load_body_model

    return load_body_model()


@pytest.fixture(scope="session")
def prior_path(tmp_path_factory):
    return small_prior(tmp_path_factory.mktemp("prior"))


@pytest.fixture(scope="session")
def pose_prior(prior_path):
    from hmr.fitting.prior import load_pose_prior

    return load_pose_prior(prior_path)


@pytest.fixture(scope="session")
def store_path(tmp_path_factory):
    return synth_store(tmp_path_factory.mktemp("synth"), n=8)
