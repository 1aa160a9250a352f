"""Protocol conventions a published number depends on: PVE's predicted-mesh gender, the fixed
reference mesh of the balanced metrics, 3DPCK/AUC and the MPI-INF-3DHP benchmark, 2D PCK."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError
from hmr.core.geometry import axis_angle_to_matrix, project_points
from hmr.core.keypoints import convert_keypoints
from hmr.core.schema.store import StoreWriter, open_store
from hmr.evaluation import get_benchmark, score_predictions, select_samples
from hmr.evaluation import run as run_module
from hmr.evaluation.metrics import auc, pck, pck_2d
from hmr.evaluation.report import benchmarks_table, markdown, summarise
from hmr.evaluation.run import BodyModels, EvalOptions, evaluate, reference_mesh
from hmr.models import HMR, ModelConfig
from hmr.models.checkpoint import save_checkpoint
from tests.fixtures.training import mean_params_arrays, random_pose_aa, write_test_store


@pytest.fixture(scope="module")
def models():
    return BodyModels(None, torch.device("cpu"))


def _rotmats(params):
    aa = torch.cat([params["global_orient"], params["body_pose"]], dim=1).reshape(-1, 24, 3)
    return axis_angle_to_matrix(aa)


# -- 1. PVE: which model makes the predicted mesh --------------------------------------------
def test_pve_convention_gendered_by_default_on_3dpw_and_recorded(tmp_path, models):
    path, params = write_test_store(tmp_path / "pw3d.zarr", models("neutral"), dataset="3dpw", genders=(1, 2), n=6)
    store, bench = open_store(path), get_benchmark("3dpw")
    rows = select_samples(bench, store)
    rot, betas = _rotmats(params), params["betas"]
    # The exact GT parameters: MMHuman3D's convention (GT gender's model) gives PVE 0 ...
    gendered = score_predictions(bench, store, rows, rot, betas, models)
    assert bench.pve_convention == "gendered" and gendered.pve_convention == "gendered"
    np.testing.assert_allclose(gendered.pve_mm, 0, atol=1e-3)
    # ... SPIN's (neutral model) measures the neutral-vs-gendered body difference.
    neutral = score_predictions(bench, store, rows, rot, betas, models, pve_convention="neutral")
    assert (neutral.pve_mm > 1.0).all() and neutral.pve_convention == "neutral"
    # Joint metrics never depend on it: predicted joints come from the neutral model in both codes.
    np.testing.assert_array_equal(neutral.mpjpe_mm, gendered.mpjpe_mm)
    result = summarise(bench, neutral, meta={"conventions": run_module.conventions(bench, "neutral", "ref")})
    assert result["pve_convention"] == "neutral"
    assert "- pve: neutral: predicted mesh from the neutral model (SPIN eval.py)" in markdown(result)
    assert "pve: neutral" in benchmarks_table({"run": [result]}, "PVE")
    with pytest.raises(ConfigError, match="PVE convention"):
        score_predictions(bench, store, rows, rot, betas, models, pve_convention="male")


# -- 2. Balanced metrics: rarity from a fixed reference, not from the checkpoint ---------------
def _checkpoint(tmp_path, name, pose_shift):
    arrays = mean_params_arrays()
    arrays["pose"] = arrays["pose"] + pose_shift
    np.savez(tmp_path / f"{name}.npz", **arrays)
    config = ModelConfig(backbone="resnet18", img_size=64, hidden=32, mean_params=str(tmp_path / f"{name}.npz"))
    torch.manual_seed(0)
    model = HMR(config)
    return save_checkpoint(tmp_path / name / "last.pt", {"config": {"model": asdict(config)},
                                                          "model": model.state_dict(), "step": 1})


def test_identical_predictions_get_identical_balanced_metrics(tmp_path, models, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    path, params = write_test_store(tmp_path / "pw3d.zarr", models("neutral"), dataset="3dpw", n=10,
                                    image_root=images)
    import cv2

    for i in range(10):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), np.full((64, 64, 3), 128, np.uint8))
    rot = _rotmats(params)
    rot[:, 1:] = torch.eye(3)  # rest-pose predictions: errors grow with rarity
    fixed = {"pose_rotmat": rot, "betas": params["betas"], "cam": torch.zeros(10, 3), "cam_t": torch.zeros(10, 3)}
    monkeypatch.setattr(run_module, "predict", lambda model, loader, device: fixed)
    opts = EvalOptions(batch_size=4, num_workers=0, worst=0, device="cpu")
    a = evaluate(_checkpoint(tmp_path, "a", 0.0), "3dpw", path, tmp_path / "ea", opts)
    b = evaluate(_checkpoint(tmp_path, "b", 0.3), "3dpw", path, tmp_path / "eb", opts)
    assert a["balanced"] == b["balanced"] and a["balanced_bins"] == b["balanced_bins"]
    assert "zero pose, zero shape" in a["conventions"]["balanced_reference"]
    # SPIN's mean-parameter file, when given, is the reference instead (and says so).
    np.savez(tmp_path / "smpl_mean_params.npz", **mean_params_arrays())
    c = evaluate(_checkpoint(tmp_path, "c", 0.0), "3dpw", path, tmp_path / "ec",
                 EvalOptions(batch_size=4, num_workers=0, worst=0, device="cpu",
                             mean_params=str(tmp_path / "smpl_mean_params.npz")))
    assert "smpl_mean_params.npz body" in c["conventions"]["balanced_reference"]
    assert c["balanced_bins"]["edges_mm"] != a["balanced_bins"]["edges_mm"]
    written = json.loads((tmp_path / "ec" / "results.json").read_text())
    assert written["conventions"]["pve"].startswith("gendered")


def test_reference_mesh_of_spin_mean_params_is_the_regressor_start(tmp_path, models):
    np.savez(tmp_path / "m.npz", **mean_params_arrays())  # root turned pi about x, identity body
    verts, text = reference_mesh(models, tmp_path / "m.npz")
    zero, _ = reference_mesh(models)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    pelvis = models("neutral")(global_orient=torch.zeros(1, 3), body_pose=torch.zeros(1, 69),
                               betas=torch.zeros(1, 10)).joints_smpl24[0, 0]
    np.testing.assert_allclose(verts.numpy(), ((zero - pelvis) @ flip.T + pelvis).numpy(), atol=1e-5)
    assert "blake2b" in text


# -- 4. 3DPCK / AUC and the MPI-INF-3DHP protocol -------------------------------------------
def test_pck_and_auc_by_hand():
    err = torch.tensor([[0.0, 4.9, 5.0, 149.0, 150.0, 300.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, True, False]])
    # < 150 mm: 4 of the 5 valid joints (150 itself fails, 300 is masked)
    assert pck(err, mask).item() == pytest.approx(80.0)
    # thresholds 0, 5, ..., 150: joint errors 0 / 4.9 / 5 / 149 / 150 pass from threshold
    # index 1 / 1 / 2 / 30 / never -> per-threshold counts summed = 30 + 30 + 29 + 1 + 0 = 90
    assert auc(err, mask).item() == pytest.approx(100.0 * 90 / (5 * 31))
    pred = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 30.0]]])
    gt = torch.zeros(1, 3, 2)
    ok = torch.ones(1, 3, dtype=torch.bool)
    assert pck_2d(pred, gt, ok, torch.tensor([100.0]), 0.2).item() == pytest.approx(200 / 3)
    # per-axis box normalisation (MMPose): 30 px of a 100 px-high box is 0.3 > 0.2; 10 px of a
    # 50 px-wide one is 0.2, not below 0.2
    assert pck_2d(pred, gt, ok, torch.tensor([[60.0, 100.0]]), 0.2).item() == pytest.approx(200 / 3)
    assert pck_2d(pred, gt, ok, torch.tensor([[50.0, 100.0]]), 0.2).item() == pytest.approx(100 / 3)
    assert pck_2d(pred, gt, ok, torch.tensor([[100.0, 200.0]]), 0.2).item() == pytest.approx(100.0)


def _write_3dhp_test_store(path, body_model, n=8):
    """A 3DHP-test-like store: the 17 test joints (mocap) = the body's H36M joints, camera
    frame, 2D = their projection; samples 1 and 5 have a joint outside the 2048 x 2048 frame."""
    g = torch.Generator().manual_seed(3)
    root, body = random_pose_aa(n, g)
    betas = 0.5 * torch.randn(n, 10, generator=g)
    out = body_model(global_orient=root, body_pose=body, betas=betas)
    j3d = out.joints_h36m17 + torch.tensor([0.0, 0.0, 4.0])  # (n, 17, 3)
    k = np.array([[1500.0, 0, 1024], [0, 1500.0, 1024], [0, 0, 1]])
    j2d = project_points(j3d.double().numpy(), k)
    j2d[1, 3, 0] = 2048.5
    j2d[5, 0, 1] = -1.0
    ones = np.ones((n, 17, 1))
    kp3d, _ = convert_keypoints(np.concatenate([j3d.numpy(), ones], -1), "h36m", "superset")
    kp2d, _ = convert_keypoints(np.concatenate([j2d, ones], -1), "h36m", "superset")
    cols = {"image_path": np.array([f"img_{i:06d}.jpg" for i in range(n)], dtype=object),
            "image_hw": np.tile(np.array([2048, 2048], np.int32), (n, 1)),
            "bbox_xywh": np.tile(np.array([500, 300, 1000, 1400], np.float32), (n, 1)),
            "keypoints3d": kp3d.astype(np.float32), "keypoints2d": kp2d.astype(np.float32),
            "source_key": np.array([f"TS1:{i}" for i in range(n)], dtype=object)}
    with StoreWriter(path, dataset="mpi_inf_3dhp", split="test", converter="tests", converter_version="1") as w:
        w.add_columns(cols)
    return path, {"global_orient": root, "body_pose": body, "betas": betas}


def test_mpi_inf_3dhp_benchmark_selects_in_image_frames_and_scores_17_joints(tmp_path, models):
    path, params = _write_3dhp_test_store(tmp_path / "3dhp.zarr", models("neutral"))
    store, bench = open_store(path), get_benchmark("mpi-inf-3dhp")
    assert bench.joints == "spin_eval_j17" and "mpi_inf_3dhp" in bench.datasets
    rows = select_samples(bench, store)
    assert rows.tolist() == [0, 2, 3, 4, 6, 7]  # SPIN drops frames with a joint outside the image
    rot, betas = _rotmats(params)[rows], params["betas"][rows]
    errs = score_predictions(bench, store, rows, rot, betas, models)
    assert errs.valid_joints.tolist() == [17] * 6 and errs.pve_mm is None
    np.testing.assert_allclose(errs.mpjpe_mm, 0, atol=1e-3)
    np.testing.assert_allclose(errs.pck, 100.0)
    np.testing.assert_allclose(errs.auc, 100.0 * 30 / 31)  # threshold 0 never counts
    bent = rot.clone()
    bent[:, 4] = axis_angle_to_matrix(torch.tensor([1.2, 0.0, 0.0]))  # bend a knee by 69 degrees
    errs = score_predictions(bench, store, rows, bent, betas, models)
    assert (errs.pck < 100).all() and (errs.mpjpe_mm > 10).all()
    result = summarise(bench, errs)
    assert result["3DPCK"] == pytest.approx(errs.pck.mean(), abs=1e-3)
    assert {"3DPCK", "PA-3DPCK", "AUC", "PA-AUC"} <= set(result) and "| AUC (%) |" in markdown(result)


# -- 4b. 2D PCK on the 2-D sets ----------------------------------------------------------------
def test_predicted_keypoints_map_back_through_the_crop():
    from hmr.core.crop import apply_points, invert, person_affine
    from hmr.evaluation.benchmarks import predicted_keypoints2d

    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.3, (3, 5, 3))
    cam_t = np.array([[0.1, -0.2, 20.0], [0.0, 0.0, 30.0], [-0.3, 0.1, 25.0]])
    boxes = np.array([[100, 50, 80, 200], [10, 20, 300, 120], [0, 0, 0.5, 0.5]])
    out = predicted_keypoints2d(joints, cam_t, boxes, 64, 1.2, 5000.0 * 64 / 224)
    k = np.array([[5000.0 * 64 / 224, 0, 31.5], [0, 5000.0 * 64 / 224, 31.5], [0, 0, 1]])
    for i in range(3):
        crop = project_points(joints[i] + cam_t[i], k)
        np.testing.assert_allclose(out[i], apply_points(invert(person_affine(boxes[i], 64, 1.2)), crop), atol=1e-6)


def _write_2d_store(path, n=4):
    rng = np.random.default_rng(2)
    lsp = rng.uniform(50, 200, (n, 14, 2))
    conf = np.ones((n, 14, 1))
    conf[0, 13] = 0  # an unlabelled head top
    kp2d, _ = convert_keypoints(np.concatenate([lsp, conf], -1), "lsp", "superset")
    boxes = np.tile(np.array([40.0, 40.0, 100.0, 200.0], np.float32), (n, 1))  # longer side 200 px
    cols = {"image_path": np.array([f"img_{i:04d}.jpg" for i in range(n)], dtype=object),
            "image_hw": np.tile(np.array([256, 256], np.int32), (n, 1)), "bbox_xywh": boxes,
            "keypoints2d": kp2d.astype(np.float32), "source_key": np.array([f"k{i}" for i in range(n)], dtype=object)}
    with StoreWriter(path, dataset="lsp", split="test", converter="tests", converter_version="1",
                     image_root=str(path.parent / "images")) as w:
        w.add_columns(cols)
    return path, lsp


def test_2d_pck_against_the_stored_keypoints(tmp_path):
    from hmr.evaluation.benchmarks import score_keypoints2d

    path, lsp = _write_2d_store(tmp_path / "lsp.zarr")
    bench = get_benchmark("lsp-test-2d")
    pred = lsp.copy()
    pred[:, :7, 0] += 15.0  # 15 px = 0.075 of the 200 px side: fails @0.05, passes @0.2
    pred[:, 7:10, 1] -= 50.0  # 0.25: fails both
    errs = score_keypoints2d(bench, open_store(path), np.arange(4), pred, "lsp14")
    assert errs.valid_joints.tolist() == [13, 14, 14, 14]
    np.testing.assert_allclose(errs.pck[0.05], [100 * 3 / 13, 100 * 4 / 14, 100 * 4 / 14, 100 * 4 / 14])
    np.testing.assert_allclose(errs.pck[0.2], [100 * 10 / 13, 100 * 11 / 14, 100 * 11 / 14, 100 * 11 / 14])
    np.testing.assert_allclose(errs.error_px[1], (7 * 15 + 3 * 50) / 14)


def test_evaluate_runs_a_2d_benchmark(tmp_path):
    import cv2

    path, _ = _write_2d_store(tmp_path / "lsp.zarr")
    (tmp_path / "images").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "images" / f"img_{i:04d}.jpg"), np.full((256, 256, 3), 90, np.uint8))
    result = evaluate(_checkpoint(tmp_path, "a", 0.0), "lsp-test-2d", path, tmp_path / "e2d",
                      EvalOptions(batch_size=4, num_workers=0, worst=0, device="cpu"))
    assert result["num_samples"] == 4 and 0 <= result["2D-PCK@0.2"] <= 100 and result["2D error (px)"] > 0
    assert "| 2D-PCK@0.05 (%) |" in (tmp_path / "e2d" / "results.md").read_text()
    assert (tmp_path / "e2d" / "per_sample.csv").read_text().startswith("store_row,source_key,error_px,pck@0.05")
