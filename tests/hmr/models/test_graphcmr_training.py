"""Slow: GraphCMR learns. Trained on small synthetic shards through the ordinary trainer (CPU,
small sizes), its mesh scores a lower PA-MPJPE than the mean-pose baseline on a synthetic test set.

Figures of this test's runs: docs/models.md, GraphCMR, "Synthetic check".
"""

import pytest

from tests.hmr.models._beats_baseline import assert_beats_baseline, synthetic_split, train_and_compare

# The benchmark's L1 variant (graphcmr_l1) at the test's sizes: the test backbone, graph width 64,
# one residual layer, the 431-vertex mesh level, batch 16, Adam 1e-3 with a cosine decay over 600
# steps (docs/models.md, "Synthetic check": the runs that chose these)
OVERRIDES = ['model.backbone="test_resnet"', "model.img_size=64", "model.graph_channels=64", "model.graph_layers=1",
             "model.mesh_level=2", "data.shuffle_buffer=200", "data.augment=false", 'train.precision="fp32"',
             "train.batch_size=16", "train.total_steps=600", "train.checkpoint_every=600", "train.log_every=25",
             "train.keep_checkpoints=0", "optim.lr=1e-3", 'optim.scheduler="cosine"', "optim.warmup_steps=0"]


@pytest.mark.slow
def test_graphcmr_beats_the_mean_pose_baseline(tmp_path):
    # yaw within ±0.3 rad (the demo's renders turn ±90°): at this budget the network cannot yet
    # tell the yaw, and GraphCMR's camera-frame mesh then blurs over it (docs/models.md)
    split = synthetic_split(tmp_path / "data", n_train=2000, n_test=100, max_yaw=0.3)
    result = train_and_compare("graphcmr_l1", OVERRIDES, split, tmp_path)
    # 600 steps give 128.1 vs 137.8 mm (7%); 400 steps of the Normal variant stopped at 132-134
    assert_beats_baseline(result, falling=("loss", "loss_vertices", "loss_vertices_smpl", "loss_mesh_keypoints2d"),
                          min_gain=0.03)
