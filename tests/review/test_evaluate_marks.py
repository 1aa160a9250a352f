"""``hmr evaluate --exclude-marked`` leaves out the samples marked with ``hmr review`` and says so."""

from __future__ import annotations

import json
from dataclasses import asdict

import cv2
import numpy as np
import torch

from cli.main import main
from hmr.core.body.smpl import load_body_model
from hmr.core.schema import open_store
from hmr.models import HMR, ModelConfig
from hmr.models.checkpoint import save_checkpoint
from hmr.review.marks import marks_path, update_marks
from tests.fixtures.training import write_mean_params, write_test_store


def test_evaluate_exclude_marked(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    path, _ = write_test_store(tmp_path / "pw3d.zarr", load_body_model(), dataset="3dpw", n=6, image_root=images)
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(images / f"img_{i:04d}.jpg"), rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    config = ModelConfig(backbone="resnet18", img_size=64, hidden=32,
                         mean_params=str(write_mean_params(tmp_path / "mean.npz")))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt",
                           {"config": {"model": asdict(config)}, "model": HMR(config).state_dict(), "step": 1})
    update_marks(path, set_marks={1: "flipped", 4: "cut"}, store=open_store(path))
    # as if made on another conversion of the source: rows elsewhere, one sample gone since;
    # the marks are found by source key, the lost one is counted
    doc = json.loads(marks_path(path).read_text())
    doc["source_keys_sha256"] = "another conversion"
    for mark in doc["marks"].values():
        mark["row"] = (mark["row"] + 2) % 6  # 1 -> 3, 4 -> 0: not the marked rows
    doc["marks"]["gone:7"] = {"row": 2, "source_key": "gone:7", "reason": "blurred", "excluded": True}
    marks_path(path).write_text(json.dumps(doc))
    common = ["evaluate", str(ckpt), "--bench", "3dpw", "--data", str(path), "--workers", "0", "--worst", "0",
              "--device", "cpu", "--batch-size", "6", "--no-pve"]
    assert main([*common, "--out", str(tmp_path / "all")]) == 0
    assert main([*common, "--out", str(tmp_path / "kept"), "--exclude-marked"]) == 0
    everything = json.loads((tmp_path / "all" / "results.json").read_text())
    kept = json.loads((tmp_path / "kept" / "results.json").read_text())
    assert everything["num_samples"] == 6 and "excluded_marked" not in everything
    assert kept["num_samples"] == 4 and kept["excluded_marked"]["count"] == 2
    assert kept["excluded_marked"]["not_found"] == 1
    assert kept["excluded_marked"]["file"].endswith("pw3d.zarr.marks.json")
    rows = [line.split(",")[0] for line in (tmp_path / "kept" / "per_sample.csv").read_text().splitlines()[1:]]
    assert rows == ["0", "2", "3", "5"]
    out = capsys.readouterr().out
    assert "left out 2 samples marked excluded" in out and "(1 marks name samples not in this store)" in out
