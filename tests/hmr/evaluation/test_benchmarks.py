"""Benchmark protocols on stores generated with the body model: known answers."""

import json
import math
from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch

from cli.main import main
from hmr.core.body.smpl import load_body_model
from hmr.core.errors import ConfigError, SchemaError
from hmr.evaluation import get_benchmark, score_predictions, select_samples
from hmr.evaluation.report import benchmarks_table, markdown, summarise, write_report
from hmr.evaluation.run import EvalOptions, evaluate
from hmr.core.geometry import axis_angle_to_matrix
from hmr.models import HMR, ModelConfig
from hmr.core.schema.store import open_store
from hmr.models.checkpoint import save_checkpoint
from tests.fixtures.training import write_mean_params, write_test_store


@pytest.fixture(scope="module")
def neutral():
    return load_body_model()


class Recorder:
    """Body models by gender, recording which genders were asked for."""

    def __init__(self):
        self.asked, self.models = [], {}

    def __call__(self, gender):
        self.asked.append(gender)
        if gender not in self.models:
            self.models[gender] = load_body_model(gender=gender)
        return self.models[gender]


def _rotmats(params):
    aa = torch.cat([params["global_orient"], params["body_pose"]], dim=1).reshape(-1, 24, 3)
    return axis_angle_to_matrix(aa)


def test_perfect_prediction_scores_zero_on_3dpw(tmp_path, neutral):
    path, params = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw")
    store, bench = open_store(path), get_benchmark("3dpw")
    rows = select_samples(bench, store)
    rec = Recorder()
    mean_verts = neutral(global_orient=torch.zeros(1, 3), body_pose=torch.zeros(1, 69),
                         betas=torch.zeros(1, 10)).vertices[0]
    errs = score_predictions(bench, store, rows, _rotmats(params), params["betas"], rec,
                             mean_vertices=mean_verts, batch_size=5)
    assert len(errs.index) == 12 and errs.valid_joints.tolist() == [14] * 12
    np.testing.assert_allclose(errs.mpjpe_mm, 0, atol=1e-3)
    np.testing.assert_allclose(errs.pa_mpjpe_mm, 0, atol=1e-3)
    np.testing.assert_allclose(errs.pve_mm, 0, atol=1e-3)
    assert (errs.rarity_mm > 0).all()
    assert set(rec.asked) == {"neutral"}


def test_3dpw_uses_gendered_ground_truth(tmp_path, neutral):
    path, params = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", genders=(1, 2), n=4)
    store = open_store(path)
    rec = Recorder()
    score_predictions(get_benchmark("3dpw"), store, np.arange(4), _rotmats(params), params["betas"], rec)
    assert {"male", "female", "neutral"} == set(rec.asked)
    rec = Recorder()  # EFT benchmarks: neutral GT whatever the gender field says
    path2, _ = write_test_store(tmp_path / "eft.zarr", neutral, dataset="eft-coco", genders=(1, 2), n=4)
    score_predictions(get_benchmark("eft-coco-val"), open_store(path2), np.arange(4), _rotmats(params),
                      params["betas"], rec)
    assert set(rec.asked) == {"neutral"}


def test_global_rotation_is_removed_by_procrustes_only(tmp_path, neutral):
    path, params = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", n=6)
    rot = _rotmats(params)
    turn = axis_angle_to_matrix(torch.tensor([0.0, math.pi / 3, 0.0]))
    rot[:, 0] = turn @ rot[:, 0]
    errs = score_predictions(get_benchmark("3dpw"), open_store(path), np.arange(6), rot, params["betas"], Recorder())
    np.testing.assert_allclose(errs.pa_mpjpe_mm, 0, atol=1e-2)
    assert (errs.mpjpe_mm > 50).all() and (errs.pve_mm > 50).all()


def test_h36m_protocols_select_cameras_and_score_mocap_joints(tmp_path, neutral):
    path, params = write_test_store(tmp_path / "h36m.zarr", neutral, dataset="h36m", n=8,
                                    cameras=("60457274", "55011271"))
    store = open_store(path)
    p2, p1 = get_benchmark("h36m-p2"), get_benchmark("h36m_p1")
    assert select_samples(p2, store).tolist() == [0, 2, 4, 6]
    assert select_samples(p1, store).tolist() == list(range(8))
    rows = select_samples(p2, store)
    rot, betas = _rotmats(params)[rows], params["betas"][rows]
    errs = score_predictions(p2, store, rows, rot, betas, Recorder())
    # GT = mocap keypoints3d (mesh joints + camera translation): pelvis alignment removes it
    np.testing.assert_allclose(errs.mpjpe_mm, 0, atol=1e-2)
    body = rot.clone()
    body[:, 5] = axis_angle_to_matrix(torch.tensor([1.0, 0.0, 0.0]))  # bend a knee
    errs = score_predictions(p2, store, rows, body, betas, Recorder())
    assert (errs.mpjpe_mm > 5).all()
    other, _ = write_test_store(tmp_path / "other.zarr", neutral, dataset="h36m", n=2, cameras=("54138969",))
    with pytest.raises(SchemaError, match="camera 60457274"):
        select_samples(p2, open_store(other))


def test_unknown_benchmark_is_a_config_error():
    with pytest.raises(ConfigError, match="3dpw"):
        get_benchmark("mpii-test")


def test_report_files_and_tables(tmp_path, neutral):
    path, params = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", n=20)
    rot = _rotmats(params)
    rot[:, 1:] = torch.eye(3)  # predict the rest pose: errors grow with pose rarity
    mean_verts = neutral(global_orient=params["global_orient"][:1] * 0, body_pose=torch.zeros(1, 69),
                         betas=torch.zeros(1, 10)).vertices[0]
    store = open_store(path)
    errs = score_predictions(get_benchmark("3dpw"), store, np.arange(20), rot, params["betas"], Recorder(),
                             mean_vertices=mean_verts)
    result = summarise(get_benchmark("3dpw"), errs, num_bins=5)
    assert result["MPJPE"] == pytest.approx(errs.mpjpe_mm.mean(), abs=1e-3)
    assert set(result["balanced"]) == {"bMPVPE", "bMPJPE", "bPA-MPJPE"}
    tail5 = errs.mpjpe_mm[np.argsort(-errs.rarity_mm)[:1]].mean()  # int(20 · 5%) = 1 sample
    assert result["balanced"]["bMPJPE"]["Tail 5%"] == pytest.approx(tail5, abs=1e-3)
    files = write_report(tmp_path / "out", result, errs, store.read("source_key"))
    names = {f.name for f in files}
    assert names == {"results.json", "results.md", "per_sample.csv", "error_vs_rarity.png", "error_per_bin.png"}
    assert json.loads((tmp_path / "out" / "results.json").read_text())["num_samples"] == 20
    csv_lines = (tmp_path / "out" / "per_sample.csv").read_text().splitlines()
    assert len(csv_lines) == 21 and csv_lines[1].startswith("0,key0,")
    md = markdown(result)
    assert "| bMPVPE | bMPJPE | bPA-MPJPE |" in md and f"{result['PA-MPJPE']:.2f}" in md
    table = benchmarks_table({"run-a": [result]})
    assert "| Config | 3DPW test |" in table and f"| run-a | {result['PA-MPJPE']:.2f} |" in table


def test_evaluate_end_to_end_writes_report_and_overlays(tmp_path, neutral, capsys):
    images = tmp_path / "images"
    images.mkdir()
    path, _ = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", n=6, image_root=images)
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    config = ModelConfig(backbone="resnet18", img_size=64, hidden=32,
                         mean_params=str(write_mean_params(tmp_path / "mean.npz")))
    torch.manual_seed(0)
    model = HMR(config)
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt",
                           {"config": {"model": asdict(config)}, "model": model.state_dict(), "step": 7})
    (tmp_path / "mean.npz").unlink()  # the checkpoint must be self-contained
    opts = EvalOptions(batch_size=4, num_workers=0, worst=2, device="cpu")
    result = evaluate(ckpt, "3dpw", path, tmp_path / "eval", opts)
    assert result["num_samples"] == 6 and result["checkpoint_step"] == 7 and result["PVE"] > 0
    worst = sorted((tmp_path / "eval" / "worst").glob("worst_*.png"))
    assert len(worst) == 2 and cv2.imread(str(worst[0])).shape == (256, 512, 3)  # drawn large, not at 64 px
    assert result["crop_scale"] == 1.0  # no training record: SPIN's crop for 3DPW
    # A checkpoint trained on shards records their crop scale: evaluation frames people the same way.
    framed = save_checkpoint(tmp_path / "run2" / "last.pt", {**torch.load(ckpt, weights_only=True), "crop_scale": 1.2})
    again = evaluate(framed, "3dpw", path, tmp_path / "eval_framed", EvalOptions(batch_size=4, num_workers=0, worst=0,
                                                                               device="cpu"))
    assert again["crop_scale"] == 1.2 and again["PA-MPJPE"] != result["PA-MPJPE"]
    forced = evaluate(framed, "3dpw", path, tmp_path / "eval_forced", EvalOptions(batch_size=4, num_workers=0, worst=0,
                                                                                device="cpu", crop_scale=1.0))
    assert forced["crop_scale"] == 1.0 and forced["PA-MPJPE"] == pytest.approx(result["PA-MPJPE"])
    with pytest.raises(ConfigError, match="dataset '3dpw', benchmark h36m-p2 expects one of"):
        evaluate(ckpt, "h36m-p2", path, tmp_path / "eval2", opts)
    train_split, _ = write_test_store(tmp_path / "pw3d_train.zarr", neutral, dataset="3dpw", n=2, split="train")
    with pytest.raises(ConfigError, match="split 'train'"):
        evaluate(ckpt, "3dpw", train_split, tmp_path / "eval2", opts)
    assert main(["evaluate", "--table", str(tmp_path / "eval" / "results.json")]) == 0
    assert f"| run | {result['PA-MPJPE']:.2f} |" in capsys.readouterr().out
    (images / "img_0003.jpg").unlink()
    with pytest.raises(Exception, match="img_0003.jpg.*record 3"):
        evaluate(ckpt, "3dpw", path, tmp_path / "eval3", opts)
