"""``hmr smplx-to-smpl``: SMPL for the rows of a store that carry SMPL-X only, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cli.main import main
from hmr.core.body import load_body_model
from hmr.core.schema import StoreWriter, open_store
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES
from tests.hmr.fitting.test_smplx_transfer import MAX_BOUND_MM, random_smplx

# Rows: 0-2 SMPL-X only (row 1 without a known translation, row 2 a male model), 3 ground-truth
# SMPL, 4 no body model, 5 SMPL-X in another frame (PROX's MoSh++). Hands: 12 PCA values
# relative to the mean hand, the columns a converter writes (extra_smplx_use_pca, _num_pca_comps).
N = 6
@pytest.fixture(autouse=True)
def _no_user_smplx(monkeypatch):
    monkeypatch.delenv("HMR_SMPLX_MODEL", raising=False)  # the mannequin, whatever the user has


COMMON = {"image_hw": np.array([480, 640], np.int32), "bbox_xywh": np.array([10, 10, 50, 100], np.float32)}


def _write_store(path, kid: bool = False):
    p = {k: v.numpy() for k, v in random_smplx(N, seed=7).items()}
    comps = 12
    with StoreWriter(path, dataset="smplx-fixture", split="train", converter="tests.cli", converter_version="1",
                     chunk_rows=2) as w:
        for i in range(N):
            has = i in (0, 1, 2, 5)
            row = {**COMMON, "image_path": f"{i}.jpg", "source_key": f"row{i}", "gender": 0,
                   "extra_smplx_gender": 1 if i == 2 else 0, "extra_smplx_use_pca": has,
                   "extra_smplx_num_pca_comps": np.int32(comps if has else 0), "extra_smplx_flat_hand_mean": False,
                   "extra_smplx_has_transl": has and i != 1, "extra_smplx_in_camera_frame": np.uint8(i != 5),
                   "extra_smplx_kid_beta": np.float32(0.5 if (kid and i == 0) else 0.0)}
            for name in ("global_orient", "body_pose", "betas", "jaw_pose", "leye_pose", "reye_pose", "expression",
                         "transl"):
                row[f"extra_smplx_{name}"] = p[name][i] * has
            for side in ("left", "right"):
                row[f"extra_smplx_{side}_hand_pose"] = p[f"{side}_hand_pose"][i, :comps] * has
            if i == 3:
                row.update(has_smpl=True, smpl_source=SMPL_SOURCES.index("ground-truth"),
                           smpl_betas=np.full(10, 0.25, np.float32))
            w.add(row)
    return path


def _smplx_joints(cols, i, model) -> torch.Tensor:
    """The row's SMPL-X body joints, computed here through smplx's own PCA and mean-hand rule."""
    import smplx

    with torch.no_grad():
        ref = smplx.create(str(model.source).rsplit("/smplx/", 1)[0], model_type="smplx",
                           gender=GENDERS[int(cols["extra_smplx_gender"][i])], use_pca=True, num_pca_comps=12,
                           flat_hand_mean=False, num_betas=10, num_expression_coeffs=10)
        args = {k: torch.from_numpy(np.asarray(cols[f"extra_smplx_{k}"][i:i + 1], np.float32)) for k in
                ("global_orient", "body_pose", "betas", "jaw_pose", "leye_pose", "reye_pose", "expression",
                 "transl", "left_hand_pose", "right_hand_pose")}
        return ref(**args).joints[0, :22]


def test_transfer_in_place(tmp_path):
    store_path = _write_store(tmp_path / "s.zarr")
    assert main(["smplx-to-smpl", str(store_path), "--steps", "8"]) == 0
    store = open_store(store_path)
    store.validate()
    cols = store.columns()
    code = SMPL_SOURCES.index("smplx-transfer")
    assert cols["has_smpl"].tolist() == [True, True, True, True, False, False]
    assert cols["smpl_source"].tolist() == [code, code, code, SMPL_SOURCES.index("ground-truth"), 0, 0]
    assert cols["has_smpl_transl"].tolist() == [True, False, True, False, False, False]
    assert np.all(cols["smpl_transl"][1] == 0) and cols["gender"].tolist() == [0, 0, 1, 0, 0, 0]
    assert np.all(cols["smpl_betas"][3] == 0.25)
    err = cols["extra_smplx_transfer_error_mm"]
    assert np.all(err[:3] > 0) and np.all(err[:3] < MAX_BOUND_MM) and np.all(err[3:] == -1)
    assert store.attrs["converter"] == "tests.cli" and "smplx_transfer" in store.attrs
    # The stored SMPL, run through the body model of the row's gender, lands on the SMPL-X body.
    for i in (0, 2):
        gender = GENDERS[int(cols["gender"][i])]
        smpl = load_body_model(gender=gender)
        t = {k: torch.from_numpy(np.asarray(cols[f"smpl_{k}"][i:i + 1])) for k in
             ("global_orient", "body_pose", "betas", "transl")}
        with torch.no_grad():
            joints = smpl(t["global_orient"], t["body_pose"], t["betas"], t["transl"]).joints_smpl24[0, :22]
        target = _smplx_joints(cols, i, load_body_model(gender=gender, model_type="smplx"))
        assert float((joints - target).norm(dim=-1).mean()) * 1000 == pytest.approx(float(err[i]), abs=0.5)
    assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob("*.old*"))
    # A converted store's output manifest records its digest: no in-place rewrite then.
    (tmp_path / "s.zarr.manifest.json").write_text("{}")
    assert main(["smplx-to-smpl", str(store_path)]) != 0


@pytest.mark.slow
def test_kid_rows_need_the_template_and_out_keeps_the_input(tmp_path, capsys):
    store_path = _write_store(tmp_path / "kid.zarr", kid=True)
    before = open_store(store_path).columns()
    out = tmp_path / "out.zarr"
    assert main(["smplx-to-smpl", str(store_path), "--out", str(out), "--steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert "1 skipped: kid shape" in printed and "1 skipped: SMPL-X not in the camera frame" in printed
    cols = open_store(out).columns()
    assert cols["has_smpl"].tolist() == [False, True, True, True, False, False]
    after = open_store(store_path).columns()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the input is untouched
    assert main(["smplx-to-smpl", str(store_path), "--out", str(out)]) != 0  # exists: refused
    # With a kid template (AGORA's smplx_kid_template.npy: a (10475, 3) template) the kid is fitted.
    template = load_body_model(model_type="smplx").smplx.v_template.numpy() * 0.7
    np.save(tmp_path / "kid.npy", template)
    assert main(["smplx-to-smpl", str(store_path), "--out", str(out), "--overwrite", "--steps", "6",
                 "--smplx-kid-template", str(tmp_path / "kid.npy")]) == 0
    cols = open_store(out).columns()
    assert cols["has_smpl"][0] and cols["extra_smplx_transfer_error_mm"][0] < 2 * MAX_BOUND_MM
    assert cols["smpl_betas"][0, 0] < -1.0  # beta 0 is overall size on the mannequin: a smaller body


def test_store_without_smplx_columns_is_refused(tmp_path, capsys):
    path = tmp_path / "plain.zarr"
    with StoreWriter(path, dataset="plain", split="train", converter="tests.cli", converter_version="1") as w:
        w.add({**COMMON, "image_path": "0.jpg", "source_key": "0"})
    assert main(["smplx-to-smpl", str(path)]) != 0
    assert "extra_smplx_" in capsys.readouterr().err
