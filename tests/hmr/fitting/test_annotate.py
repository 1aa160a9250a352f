import numpy as np
import pytest

from cli.main import main
from hmr.core.errors import SchemaError
from hmr.fitting.annotate import FitStoreOptions, fit_store
from hmr.fitting.smplify import SMPLifyConfig
from hmr.core.schema import StoreWriter, open_store
from hmr.core.schema.fields import SMPL_SOURCES

FAST = SMPLifyConfig(camera_iters=15, body_iters=25)


def test_fit_store_writes_smplify_pseudo_ground_truth(tmp_path, store_path, prior_path):
    out = tmp_path / "fit.zarr"
    report = fit_store(store_path, out, FAST, FitStoreOptions(pose_prior=str(prior_path), progress=False))
    src, dst = open_store(store_path), open_store(out)
    assert report.fitted == report.samples == len(src) == len(dst)
    assert (dst.read("smpl_source") == SMPL_SOURCES.index("smplify")).all() and dst.read("has_smpl").all()
    np.testing.assert_array_equal(dst.read("keypoints2d"), src.read("keypoints2d"))
    assert list(dst.read("image_path")) == list(src.read("image_path"))
    err = dst.read("extra_smplify_reproj_px")
    assert dst.read("extra_smplify_fitted").all() and (dst.read("extra_smplify_loss") > 0).all()
    # 96-px images: the mean pose starts ~5 px off (~25 px at 512 px, see hmr.fitting.smplify);
    # a short fit brings the median to a few pixels.
    assert np.median(err) < 4.0 and report.median_reproj_px == pytest.approx(np.median(err))
    assert dst.read("has_smpl_transl").all() and dst.attrs["converter"] == "hmr-fit"
    assert dst.attrs["smplify"]["config"]["body_iters"] == 25
    dst.validate()
    # The fits table started from this store carries the fits and their losses.
    from hmr.fitting.fits_table import FitsTable, store_keys

    table = FitsTable.from_store(tmp_path / "fits", out)
    pose, _, loss = table.lookup(store_keys(dst))
    np.testing.assert_array_equal(loss, dst.read("extra_smplify_loss"))
    np.testing.assert_array_equal(pose[:, 3:], dst.read("smpl_body_pose"))


def test_samples_without_keypoints_keep_their_smpl(tmp_path, store_path, prior_path):
    src = open_store(store_path)
    cols = src.columns()
    cols["keypoints2d"][1, :, 2] = 0.0  # nothing to fit
    cols["has_intrinsics"][2] = False  # unknown camera: no translation is stored
    cols["cam_intrinsics"][2] = 0.0
    edited = tmp_path / "edited.npz"
    keep = {k: src.attrs[k] for k in ("dataset", "split", "converter", "converter_version", "image_root")}
    with StoreWriter(edited, **keep) as writer:
        writer.add_columns(cols)
    out = tmp_path / "fit.npz"
    fit_store(edited, out, SMPLifyConfig(camera_iters=2, body_iters=2),
              FitStoreOptions(pose_prior=str(prior_path), progress=False, limit=3))
    dst = open_store(out)
    assert len(dst) == 3 and dst.read("extra_smplify_fitted").tolist() == [True, False, True]
    assert dst.read("smpl_source")[1] == src.read("smpl_source")[1]
    np.testing.assert_array_equal(dst.read("smpl_body_pose")[1], src.read("smpl_body_pose")[1])
    assert dst.read("extra_smplify_loss")[1] == -1.0
    assert dst.read("has_smpl_transl").tolist() == [True, True, False]
    assert not dst.read("smpl_transl")[2].any()


def test_fit_cli_and_refusals(tmp_path, store_path, prior_path, capsys):
    out = tmp_path / "cli.zarr"
    rc = main(["fit", str(store_path), "--out", str(out), "--limit", "2", "--camera-iters", "2",
               "--body-iters", "2", "--pose-prior", str(prior_path), "--init", "store"])
    assert rc == 0 and "2/2 samples fitted" in capsys.readouterr().out
    assert len(open_store(out)) == 2
    with pytest.raises(SchemaError, match="differ"):
        fit_store(store_path, store_path, FAST, FitStoreOptions(pose_prior=str(prior_path), progress=False))
    with pytest.raises(FileExistsError):
        fit_store(store_path, out, FAST, FitStoreOptions(pose_prior=str(prior_path), progress=False, limit=1))
