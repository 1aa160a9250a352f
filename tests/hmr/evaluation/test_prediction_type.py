"""Evaluation reads every model through hmr.models.Prediction: SMPL posed, or the model's mesh."""

from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch

from hmr.core.body.smpl import load_body_model
from hmr.core.geometry import axis_angle_to_matrix
from hmr.core.schema.store import open_store
from hmr.evaluation import get_benchmark, score_predictions, select_samples
from hmr.evaluation.run import CropDataset, EvalOptions, evaluate, predict
from hmr.models import HMR, ModelConfig, Prediction, create_model, prediction_meshes, smpl_output, to_prediction
from hmr.models.checkpoint import load_model, save_checkpoint
from tests.fixtures.training import write_mean_params, write_test_store


@pytest.fixture(scope="module")
def neutral():
    return load_body_model()


def _rotmats(params):
    return axis_angle_to_matrix(torch.cat([params["global_orient"], params["body_pose"]], 1).reshape(-1, 24, 3))


def test_hmr_prediction_is_posed_exactly_as_before(tmp_path, neutral):
    config = ModelConfig(backbone="test_resnet", img_size=64, hidden=16,
                         mean_params=str(write_mean_params(tmp_path / "mean.npz")))
    model = HMR(config).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
        pred = to_prediction(out)
        assert pred.vertices is None and pred.keys() == ["cam", "cam_t", "pose_rotmat", "betas"]
        assert torch.equal(prediction_meshes(pred, neutral).vertices,
                           smpl_output(neutral, out.pose_rotmat, out.betas).vertices)


def test_a_mesh_is_scored_on_its_vertices(tmp_path, neutral):
    path, params = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", n=8)
    store, bench = open_store(path), get_benchmark("3dpw")
    rows = select_samples(bench, store)
    rot, betas = _rotmats(params), params["betas"]
    verts = prediction_meshes(Prediction(cam=torch.zeros(8, 3), cam_t=torch.zeros(8, 3), pose_rotmat=rot, betas=betas),
                              neutral).vertices
    by_params = score_predictions(bench, store, rows, rot, betas, lambda g: load_body_model(gender=g))
    by_mesh = score_predictions(bench, store, rows, None, None, lambda g: load_body_model(gender=g), vertices=verts)
    np.testing.assert_allclose(by_mesh.mpjpe_mm, 0, atol=1e-3)
    np.testing.assert_allclose(by_mesh.pve_mm, 0, atol=1e-3)
    np.testing.assert_allclose(by_params.mpjpe_mm, 0, atol=1e-3)
    # a mesh shifted by 1 cm along x: root-relative joints unchanged, every vertex 10 mm off
    moved = score_predictions(bench, store, rows, None, None, lambda g: load_body_model(gender=g),
                              vertices=verts + torch.tensor([0.01, 0.0, 0.0]))
    np.testing.assert_allclose(moved.mpjpe_mm, 0, atol=1e-3)
    np.testing.assert_allclose(moved.pve_mm, 10.0, atol=1e-3)


def test_evaluate_scores_graphcmr_on_its_mesh(tmp_path, neutral):
    images = tmp_path / "images"
    images.mkdir()
    path, _ = write_test_store(tmp_path / "pw3d.zarr", neutral, dataset="3dpw", n=4, image_root=images)
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    config = ModelConfig(type="graphcmr", backbone="test_resnet", img_size=64, graph_channels=64, graph_layers=0,
                         mesh_level=2, backbone_checkpoint="")
    torch.manual_seed(0)
    model = create_model(config, body_model=neutral)
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt",
                           {"config": {"model": asdict(config)}, "model": model.state_dict(), "step": 3})
    result = evaluate(ckpt, "3dpw", path, tmp_path / "eval", EvalOptions(batch_size=2, num_workers=0, worst=1,
                                                                       device="cpu"))
    assert result["num_samples"] == 4 and result["PVE"] > 0
    assert len(list((tmp_path / "eval" / "worst").glob("worst_*.png"))) == 1
    # the numbers are those of the regressed mesh, not of the SMPL regressed from it
    loaded, _ = load_model(ckpt)
    store = open_store(path)
    rows = select_samples(get_benchmark("3dpw"), store)
    data = CropDataset(images, store.read("image_path")[rows], store.read("bbox_xywh")[rows], rows,
                       loaded.input_config.with_crop_scale(1.0))
    preds = predict(loaded, torch.utils.data.DataLoader(data, batch_size=2), torch.device("cpu"))
    assert preds["vertices"].shape == (4, 6890, 3)
    models = lambda g: load_body_model(gender=g)  # noqa: E731
    mesh = score_predictions(get_benchmark("3dpw"), store, rows, None, None, models, vertices=preds["vertices"])
    smpl = score_predictions(get_benchmark("3dpw"), store, rows, preds["pose_rotmat"], preds["betas"], models)
    assert result["MPJPE"] == pytest.approx(mesh.mpjpe_mm.mean(), rel=1e-6)
    assert result["MPJPE"] != pytest.approx(smpl.mpjpe_mm.mean(), rel=1e-3)


def test_predict_writes_graphcmr_mesh_and_parameters(tmp_path, neutral):
    import json

    from hmr.evaluation.predict import predict_images

    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), np.random.default_rng(1).integers(0, 255, (80, 60, 3), dtype=np.uint8))
    config = ModelConfig(type="graphcmr", backbone="test_resnet", img_size=64, graph_channels=64, graph_layers=0,
                         mesh_level=2, backbone_checkpoint="")
    torch.manual_seed(0)
    model = create_model(config, body_model=neutral).eval()
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt", {"config": {"model": asdict(config)},
                                                         "model": model.state_dict()})
    predict_images(ckpt, [image], tmp_path / "out", device="cpu")
    with np.load(tmp_path / "out" / "person.npz") as npz:
        vertices, betas = npz["vertices"], npz["betas"]
    record = json.loads((tmp_path / "out" / "person.json").read_text())
    assert vertices.shape == (6890, 3) and len(record["body_pose"]) == 69 and betas.shape == (10,)
    # the mesh written is the network's own (upsampled) mesh, not the SMPL body of its parameters
    loaded, _ = load_model(ckpt)
    from hmr.evaluation.run import read_crop

    crop = read_crop(image, np.array([0.0, 0.0, 60, 80]), 64, 1.0, 0)
    with torch.no_grad():
        out = loaded(torch.from_numpy(loaded.input_config.with_crop_scale(1.0).normalise(crop))[None])
    np.testing.assert_allclose(vertices, out.vertices[0].numpy(), atol=1e-6)
