"""Session fixtures: the mannequin folder is written once and shared by the body tests."""

from __future__ import annotations

import pytest

from hmr.core.body import load_body_model, write_mannequin


@pytest.fixture(scope="session")
def mannequin_dir(tmp_path_factory):
    """Folder written by ``write_mannequin`` (smpl/SMPL_*.pkl + SPIN files)."""
    return write_mannequin(tmp_path_factory.mktemp("body") / "mannequin")


@pytest.fixture(scope="session")
def neutral_model(mannequin_dir):
    """The neutral mannequin loaded through ``load_body_model`` (CPU, float32)."""
    return load_body_model(mannequin_dir, gender="neutral")
