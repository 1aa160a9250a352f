"""Suite-wide settings: tests never see a user's own body model or data folders."""

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    # A researcher's real SMPL files or data root must not change what the tests check:
    # everything runs on the licence-free mannequin and generated fixtures.
    for var in ("HMR_BODY_MODEL", "HMR_SMPLX_MODEL", "HMR_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WDS_SECURE", "1")
    # Manifests a user locked on this machine must not change what verify tests see.
    monkeypatch.setenv("HMR_MANIFEST_DIR", str(tmp_path_factory.getbasetemp() / "user-manifests"))
    yield


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    # CPU tests: two cores shared with the other xdist worker.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
