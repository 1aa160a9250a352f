"""What must hold on a CUDA device (skipped without one; ``benchmarks/gpu_check.py`` runs them).

Each test compares the GPU against the CPU on the same input, so a device-specific bug (a
tensor left on the CPU, a dtype lost under autocast, a non-deterministic kernel that changes
a result) fails here rather than as a worse number after a day of training.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch

from hmr.core.body import load_body_model
from hmr.evaluation.metrics import mpjpe, pa_mpjpe
from hmr.fitting import SMPLify, SMPLifyConfig, load_pose_prior, to_crop_frame
from hmr.fitting.problems import make_problem
from hmr.training.config import load_config
from hmr.training.random_batches import random_body_batch
from hmr.training.trainer import Trainer

#: the device under test; HMR_TEST_DEVICE=cpu runs the same comparisons CPU against CPU (a
#: check of the tests themselves on a machine without a GPU)
DEVICE = os.environ.get("HMR_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                 reason="needs a CUDA device")]


def _pose(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (0.4 * torch.randn(batch, 3, generator=g), 0.3 * torch.randn(batch, 69, generator=g),
            torch.randn(batch, 10, generator=g))


def test_body_model_on_cuda_equals_cpu():
    cpu, gpu = load_body_model(device="cpu"), load_body_model(device=DEVICE)
    orient, pose, betas = _pose(16)
    a = cpu(orient, pose, betas)
    b = gpu(orient.to(DEVICE), pose.to(DEVICE), betas.to(DEVICE))
    torch.testing.assert_close(b.vertices.cpu(), a.vertices, atol=2e-5, rtol=0)
    torch.testing.assert_close(b.joints_h36m17.cpu(), a.joints_h36m17, atol=2e-5, rtol=0)


def test_metrics_on_cuda_equal_cpu():
    g = torch.Generator().manual_seed(1)
    pred, gt = torch.randn(256, 14, 3, generator=g, dtype=torch.float64), torch.randn(256, 14, 3, generator=g,
                                                                                     dtype=torch.float64)
    mask = torch.rand(256, 14, generator=g) > 0.1
    for fn in (mpjpe, pa_mpjpe):
        torch.testing.assert_close(fn(pred.to(DEVICE), gt.to(DEVICE), mask.to(DEVICE)).cpu(), fn(pred, gt, mask),
                                   atol=1e-9, rtol=0)


@pytest.mark.parametrize("precision, channels_last", [("fp32", False), ("bf16", True)])
def test_train_step_on_cuda_follows_cpu(precision, channels_last):
    """The same first step on the same batch: finite, and the loss within what bf16 allows."""
    body = load_body_model()
    batch = random_body_batch(body, 8, crop_px=64, render=False)
    losses = {}
    for tag, device in (("ref", "cpu"), ("dev", DEVICE)):
        prec = precision if tag == "dev" else "fp32"
        cfg = load_config("tiny_cpu", ['model.backbone="resnet18"', "model.img_size=64", "train.batch_size=8",
                                       f'train.device="{device}"', f'train.precision="{prec}"',
                                       f"train.channels_last={'true' if channels_last else 'false'}",
                                       "model.dropout=0.0"])
        with tempfile.TemporaryDirectory() as run_dir:
            torch.manual_seed(0)
            trainer = Trainer(cfg, run_dir)
            before = [p.detach().clone() for p in trainer.model.parameters()]
            loss = float(trainer.train_step(batch)["loss"])
            moved = sum(not torch.equal(b0, p.detach().to(b0.device)) for b0, p in
                        zip(before, trainer.model.parameters()))
        assert np.isfinite(loss) and moved > 0, (device, loss, moved)
        losses[tag] = loss
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    assert abs(losses["dev"] - losses["ref"]) <= tolerance * max(1.0, abs(losses["ref"])), losses


def test_smplify_on_cuda_fits_like_cpu():
    results = {}
    for tag, device in (("ref", "cpu"), ("dev", DEVICE)):
        model = load_body_model(device=device)
        prob = make_problem(load_body_model(), 8, seed=0)
        kp, k, _ = to_crop_frame(prob.keypoints2d_px, prob.bbox_xywh, prob.intrinsics)
        fitter = SMPLify(model, load_pose_prior(), SMPLifyConfig(camera_iters=30, body_iters=30))
        res = fitter(torch.from_numpy(kp).to(device), torch.from_numpy(k).to(device))
        results[tag] = res.reprojection_error_px.detach().cpu()
    assert torch.isfinite(results["dev"]).all()
    # Same optimisation, different kernels: the fits land within a pixel of each other.
    assert (results["dev"] - results["ref"]).abs().max() < 1.0, results
