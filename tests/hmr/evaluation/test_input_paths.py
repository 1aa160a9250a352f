"""The same image and box give the same network input on the training path (shard → stream →
batch, no augmentation) and on the evaluation path (:class:`hmr.evaluation.run.CropDataset`).

Both frame the same square and normalise with the same table (:mod:`hmr.core.crop`). The
pixels differ by design: the shard stores a JPEG (quality 95) of a larger context crop that
the loader resamples again, evaluation resamples the original once. On band-limited content
that is about half a grey level on average: the bound below is one level (≈ 0.017 after
dividing by ImageNet's std of ≈ 0.225), 3 levels at the 99th percentile and 8 at worst. A
framing error of half a pixel already costs 2.3 levels on average (measured on this image), so
the bound catches a wrong crop, not just a wrong colour.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hmr.core.crop import IMAGENET_STD, InputConfig, person_affine
from hmr.core.schema import StoreWriter
from hmr.evaluation.run import CropDataset
from loaders.augment import geometric_affine, identity_geometry
from loaders.sample import CropSample
from loaders.shard import ShardConfig, crop_affine, load_shard_set, shard_store
from loaders.stream import EpochLoader, ShardStream, StreamConfig
from tests.fixtures.loaders import num_superset, smooth_image

# person boxes (x, y, w, h) whose context crops lie inside the 640 × 480 image: at the image
# border the black fill is resampled twice on one path and once on the other
BOXES = [[200, 100, 60, 150], [150, 60, 200, 300], [250, 150, 120, 130]]
LEVEL = 1 / 255 / np.asarray(IMAGENET_STD, np.float32)  # one grey level, per channel, normalised


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    cv2.imwrite(str(root / "scene.png"), smooth_image())
    k = num_superset()
    with StoreWriter(root / "paths.zarr", dataset="paths", split="test", converter="tests", converter_version="1",
                     image_root=str(root)) as w:
        for i, box in enumerate(BOXES):
            w.add({"image_path": "scene.png", "image_hw": (480, 640), "bbox_xywh": box,
                   "keypoints2d": np.zeros((k, 3), np.float32), "source_key": f"box{i}"})
    return root, shard_store(root / "paths.zarr", root / "shards", ShardConfig(), progress=False)


def test_the_shard_crop_and_the_loader_resize_frame_the_evaluation_square():
    cfg = ShardConfig().crop_settings()
    for box in BOXES:
        stored, side_in_crop = crop_affine(np.asarray(box, float), cfg)
        size = cfg["crop_size"]
        sample = CropSample(image=np.zeros((size, size, 3), np.uint8), keypoints2d_px=np.zeros((1, 3)),
                            keypoints3d_m=np.zeros((1, 4)), box_center_px=np.full(2, size / 2 - 0.5),
                            box_side_px=side_in_crop, crop_to_image=np.eye(3)[:2], image_hw=np.array([480, 640]))
        for out in (64, 224):
            loader = geometric_affine(sample, identity_geometry(), out)
            both = np.vstack([loader, [0, 0, 1]]) @ np.vstack([stored, [0, 0, 1]])
            np.testing.assert_allclose(both[:2], person_affine(np.asarray(box, float), out, cfg["bbox_scale"]),
                                       atol=1e-9)


@pytest.mark.parametrize("size", [64, 224])
def test_same_image_and_box_give_the_same_network_input(shards, size):
    root, set_dir = shards
    cfg = StreamConfig(out_size=size, batch_size=len(BOXES), shuffle_buffer=1, resampled=False, drop_last=False,
                       train=False)
    batch = next(iter(EpochLoader(ShardStream([(load_shard_set(set_dir), 1.0)], cfg), None)))
    order = np.argsort([int(key.rsplit("_", 1)[1]) for key in batch["key"]])
    training = batch["img"][order]  # (N, 3, S, S)
    crops = CropDataset(root, np.array(["scene.png"] * len(BOXES)), np.asarray(BOXES, float), np.arange(len(BOXES)),
                        InputConfig(size_px=size, crop_scale=ShardConfig.bbox_scale))
    evaluation = torch.stack([crops[i] for i in range(len(BOXES))])
    assert training.shape == evaluation.shape == (len(BOXES), 3, size, size)
    levels = ((training - evaluation).abs() / torch.from_numpy(LEVEL)[:, None, None]).flatten(1)  # (N, 3 S S)
    assert float(levels.mean(1).max()) < 1.0
    assert float(levels.quantile(0.99, dim=1).max()) <= 3.0 + 1e-3
    assert float(levels.max()) <= 8.0 + 1e-3


def test_evaluation_normalises_with_the_loaders_table():
    from loaders.batch import collate

    crop = cv2.cvtColor(smooth_image(32, 32, seed=3), cv2.COLOR_BGR2RGB)
    item = {"img": crop, "gains": np.ones(3)}
    item.update({name: np.zeros(1) for name in ("keypoints2d", "keypoints3d", "smpl_global_orient", "smpl_body_pose",
                                                 "smpl_betas", "has_smpl", "smpl_transl", "has_smpl_transl",
                                                 "cam_intrinsics", "has_intrinsics", "crop_to_image", "image_hw",
                                                 "gender", "aug_rotation", "aug_flip")})
    batch = collate([{**item, "key": "k", "dataset": "d"}])
    assert torch.equal(batch["img"][0], torch.from_numpy(InputConfig(size_px=32).normalise(crop)))
