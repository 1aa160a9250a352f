"""load_body_model(model_type="smplx"): finding SMPL-X files, reading them safely, the forward pass."""

from __future__ import annotations

import contextlib
import io
import pickle

import numpy as np
import pytest
import torch

from hmr.core.body import load_body_model, write_smplx_mannequin
from hmr.core.body.smplx_model import ENV_SMPLX_MODEL, ensure_smplx_mannequin, resolve_smplx_file
from hmr.core.errors import BodyModelError, UnsafePickleError
from tests.fixtures.body import malicious_pickle


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory):
    # The run's own cache (shared with test_smplx_mannequin.py), never the user's.
    return ensure_smplx_mannequin(tmp_path_factory.getbasetemp() / "hmr-cache")


@pytest.fixture(scope="module")
def arrays(smplx_dir):
    with np.load(smplx_dir / "smplx" / "SMPLX_NEUTRAL.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _params(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda n, s: s * torch.randn(batch, n, generator=g)  # noqa: E731
    return dict(global_orient=r(3, 0.5), body_pose=r(63, 0.3), betas=r(10, 1.0), left_hand_pose=r(45, 0.3),
                right_hand_pose=r(45, 0.3), jaw_pose=r(3, 0.2), leye_pose=r(3, 0.1), reye_pose=r(3, 0.1),
                expression=r(10, 1.0), transl=r(3, 0.5))


def test_wrapper_matches_smplx_create(smplx_dir):
    import smplx

    ours = load_body_model(smplx_dir, gender="female", model_type="smplx")
    with contextlib.redirect_stdout(io.StringIO()):
        ref = smplx.create(str(smplx_dir), model_type="smplx", gender="female", use_pca=False,
                           num_betas=10, num_expression_coeffs=10)
    p = _params()
    with torch.no_grad():
        out, expect = ours(**p), ref(**p)
    assert out.vertices.shape == (2, 10475, 3) and out.joints55.shape == (2, 55, 3)
    np.testing.assert_allclose(out.vertices.numpy(), expect.vertices.numpy(), atol=1e-6)
    np.testing.assert_allclose(out.joints.numpy(), expect.joints.numpy(), atol=1e-6)
    assert ours.faces.shape == (20946, 3) and int(ours.parents[22]) == 15
    # Missing optional parameters are zeros.
    with torch.no_grad():
        a = ours(p["global_orient"], p["body_pose"])
        b = ours(p["global_orient"], p["body_pose"], betas=torch.zeros(2, 10), expression=torch.zeros(2, 10))
    np.testing.assert_allclose(a.vertices.numpy(), b.vertices.numpy())


def test_hand_pca_expansion(smplx_dir, arrays):
    model = load_body_model(smplx_dir, model_type="smplx")
    coeffs = torch.randn(3, 12, generator=torch.Generator().manual_seed(1))
    full = model.hand_pca_to_axis_angle(coeffs, "right")
    np.testing.assert_allclose(full.numpy(), coeffs.numpy() @ arrays["hands_componentsr"][:12], atol=1e-5)


def _old_layout(arrays):
    """Older SMPL-X releases: shapedirs (V, 3, 20) = 10 shape + 10 expression directions."""
    sd = arrays["shapedirs"]
    return dict(arrays, shapedirs=np.concatenate([sd[:, :, :10], sd[:, :, 300:310]], axis=2))


def test_old_10_plus_10_layout(smplx_dir, arrays, tmp_path):
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **_old_layout(arrays))
    p = _params(seed=5)
    with torch.no_grad():
        a = load_body_model(tmp_path / "SMPLX_NEUTRAL.npz", model_type="smplx")(**p).vertices
        b = load_body_model(smplx_dir, model_type="smplx")(**p).vertices
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_pkl_and_npz_with_pickled_entries_are_read_safely(smplx_dir, arrays, tmp_path):
    arrays = _old_layout(arrays)  # smaller files; the layout itself is checked above
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays)
    ref = load_body_model(tmp_path, model_type="smplx")
    # The released pkl files hold the same keys; the released npz files also hold pickled dicts.
    (tmp_path / "pkl").mkdir()
    (tmp_path / "pkl" / "SMPLX_NEUTRAL.pkl").write_bytes(pickle.dumps(dict(arrays), protocol=2))
    npz_dir = tmp_path / "npz" / "smplx"
    npz_dir.mkdir(parents=True)
    np.savez(npz_dir / "SMPLX_NEUTRAL.npz", joint2num=np.array({"pelvis": 0}, dtype=object), **arrays)
    p = _params(seed=3)
    with torch.no_grad():
        expect = ref(**p).vertices
        for folder in (tmp_path / "pkl", tmp_path / "npz"):
            model = load_body_model(folder, model_type="smplx")
            np.testing.assert_allclose(model(**p).vertices.numpy(), expect.numpy(), atol=1e-6)
    assert resolve_smplx_file(tmp_path / "npz").name == "SMPLX_NEUTRAL.npz"
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "SMPLX_NEUTRAL.pkl").write_bytes(malicious_pickle(f"touch {tmp_path}/pwned"))
    with pytest.raises(UnsafePickleError):
        load_body_model(tmp_path / "evil", model_type="smplx")
    assert not (tmp_path / "pwned").exists()


def test_bad_files_name_the_problem(arrays, tmp_path):
    broken = {k: v for k, v in arrays.items() if k != "hands_componentsl"}
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **broken)
    with pytest.raises(BodyModelError, match="hands_componentsl"):
        load_body_model(tmp_path, model_type="smplx")
    wrong = dict(arrays, weights=arrays["weights"][:, :24])
    np.savez(tmp_path / "SMPLX_MALE.npz", **wrong)
    with pytest.raises(BodyModelError, match="weights"):
        load_body_model(tmp_path, gender="male", model_type="smplx")
    with pytest.raises(BodyModelError, match="SMPLX_FEMALE"):
        load_body_model(tmp_path, gender="female", model_type="smplx")
    with pytest.raises(BodyModelError, match="model_type"):
        load_body_model(tmp_path, model_type="smplh")


def test_default_is_the_cached_mannequin(monkeypatch, smplx_dir, tmp_path):
    monkeypatch.setenv("HMR_CACHE", str(smplx_dir.parent))
    monkeypatch.delenv(ENV_SMPLX_MODEL, raising=False)
    assert ensure_smplx_mannequin() == smplx_dir
    assert resolve_smplx_file(None) == smplx_dir / "smplx" / "SMPLX_NEUTRAL.npz"
    (tmp_path / "SMPLX_MALE.npz").symlink_to(smplx_dir / "smplx" / "SMPLX_MALE.npz")
    monkeypatch.setenv(ENV_SMPLX_MODEL, str(tmp_path))
    assert resolve_smplx_file(None, "male") == tmp_path / "SMPLX_MALE.npz"


@pytest.mark.slow
def test_written_folder_is_reproducible(smplx_dir, tmp_path):
    out = write_smplx_mannequin(tmp_path / "again")
    for gender in ("neutral", "male", "female"):
        name = f"smplx/SMPLX_{gender.upper()}.npz"
        assert (out / name).read_bytes() == (smplx_dir / name).read_bytes()
    with pytest.raises(FileExistsError):
        write_smplx_mannequin(out)
