"""hmr predict: parameter files and overlays for images."""

import json
from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch

from cli.main import main
from hmr.core.errors import ConfigError
from hmr.evaluation.predict import predict_images
from hmr.models import HMR, ModelConfig
from hmr.models.checkpoint import save_checkpoint
from tests.fixtures.training import write_mean_params
from tests.fixtures.paths import MMPOSE_SAMPLES


@pytest.fixture()
def checkpoint(tmp_path):
    config = ModelConfig(backbone="test_resnet", img_size=64, hidden=32,
                         mean_params=str(write_mean_params(tmp_path / "mean.npz")))
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "ckpt.pt", {"config": {"model": asdict(config)},
                                                  "model": HMR(config).state_dict(), "step": 1})


def test_predict_writes_parameters_and_overlay(tmp_path, checkpoint):
    img = tmp_path / "person.jpg"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8))
    files = predict_images(checkpoint, [img], tmp_path / "out", bboxes=[[10, 20, 40, 80]], device="cpu")
    assert [f.name for f in files] == ["person.json", "person.npz", "person_overlay.png"]
    record = json.loads(files[0].read_text())
    assert len(record["global_orient"]) == 3 and len(record["body_pose"]) == 69 and len(record["betas"]) == 10
    assert record["bbox_xywh"] == [10, 20, 40, 80]
    # the full-image camera: focal scaled by (crop side / crop px), principal point at the box centre
    k = np.array(record["image_intrinsics"])
    assert k[0, 0] == pytest.approx(5000.0 * 1.2 * 80 / 64) and k[:2, 2].tolist() == [30.0, 60.0]  # 1.2: no record
    again = predict_images(checkpoint, [img], tmp_path / "out2", bboxes=[[10, 20, 40, 80]], crop_scale=1.0, device="cpu")
    assert json.loads(again[0].read_text())["image_intrinsics"][0][0] == pytest.approx(5000.0 * 80 / 64)
    with np.load(files[1], allow_pickle=False) as npz:
        assert npz["vertices"].shape == (6890, 3) and npz["cam_t"].shape == (3,)
    assert cv2.imread(str(files[2])).shape == (64, 128, 3)


def test_predict_checks_box_count_and_cli(tmp_path, checkpoint, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(ConfigError, match="one per image"):
        predict_images(checkpoint, [img], tmp_path / "o", bboxes=[[0, 0, 5, 5], [0, 0, 5, 5]])
    assert main(["predict", str(checkpoint), str(img), "--out", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    assert "a_overlay.png" in capsys.readouterr().out
    assert main(["predict", str(checkpoint), str(tmp_path / "missing.png"), "--out", str(tmp_path / "x")]) == 2


REAL_COCO = MMPOSE_SAMPLES / "coco"


def test_predict_on_a_real_coco_image_with_its_annotated_box(tmp_path, checkpoint):
    ann = json.loads((REAL_COCO / "test_coco.json").read_text())["annotations"][0]  # image 785, one skier
    image = REAL_COCO / f"{ann['image_id']:012d}.jpg"
    files = predict_images(checkpoint, [image], tmp_path / "out", bboxes=[ann["bbox"]], device="cpu")
    record = json.loads(files[0].read_text())
    x, y, w, h = ann["bbox"]
    recorded = torch.load(checkpoint, weights_only=True).get("crop_scale")
    side = (recorded or 1.2) * max(w, h)  # around a box: the checkpoint's training crop scale
    assert record["image_intrinsics"][0][0] == pytest.approx(5000.0 * side / 64)
    assert record["image_intrinsics"][0][2] == pytest.approx(x + w / 2)
    crop = cv2.imread(str(files[2]))[:, :64]
    # the crop shows the image content around the box (not the black border of a wrong warp)
    assert crop.mean() > 40
