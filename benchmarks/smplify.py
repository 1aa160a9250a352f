"""SMPLify throughput: batched fits against a plain loop over samples, in one run.

Figures: fits per second of :class:`hmr.fitting.SMPLify` at batch 64 (SPIN's defaults: 100
camera + 100 body Adam steps, mannequin body model, our synthetic pose prior) and of the
straightforward baseline, the same fitter called on one sample at a time in a Python loop
(timed on ``--loop-samples`` samples), and their ratio; plus batch 64 with the full-mesh
forward (``BodyModel.forward`` every step instead of the joints-only model), to show what the
joints-only forward buys. All run on the same problems (``hmr.fitting.problems``) on the same
device in the same process; the median 2D error of loop and batch shows they do the same work.

Run:  python benchmarks/smplify.py [--batch 64] [--loop-samples 6] [--threads 1] [--device cpu]
      (on a GPU: --device cuda; the loop baseline then runs on the GPU too)
"""

from __future__ import annotations

import argparse
import time

import torch


class FullMeshJoints(torch.nn.Module):
    """The fit joints through the whole mesh (``BodyModel.forward``): what SMPLify would cost
    without :class:`hmr.fitting.joints_model.FitJointsModel`."""

    def __init__(self, body_model, available: torch.Tensor):
        super().__init__()
        self.body_model, self.available = body_model, available

    def forward(self, global_orient, body_pose, betas, transl=None):
        from hmr.fitting.camera import model_fit_joints

        out = self.body_model(global_orient=global_orient, body_pose=body_pose, betas=betas, transl=transl)
        root = out.joints_smpl24[:, 0] - (0 if transl is None else transl)
        return model_fit_joints(out)[0], root


def timed_fit(fitter, kp: torch.Tensor, k: torch.Tensor, device: str) -> tuple[float, torch.Tensor]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fitter(kp, k)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, result.reprojection_error_px.cpu()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--loop-samples", type=int, default=6)
    p.add_argument("--camera-iters", type=int, default=100)
    p.add_argument("--body-iters", type=int, default=100)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: steady figures on a shared machine; more threads oversubscribe it)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--pose-prior", default=None)
    p.add_argument("--smoke", action="store_true",
                   help="seconds: batch 4, 2 loop samples, 5 + 5 iterations (checks the script runs; figures meaningless)")
    a = p.parse_args()
    if a.smoke:
        a.batch, a.loop_samples, a.camera_iters, a.body_iters = 4, 2, 5, 5
    torch.set_num_threads(a.threads)

    from hmr.core.body import load_body_model
    from hmr.fitting import SMPLify, SMPLifyConfig, load_pose_prior, to_crop_frame
    from hmr.fitting.problems import make_problem

    model = load_body_model()
    prob = make_problem(model, a.batch, seed=0)
    kp, k, _ = to_crop_frame(prob.keypoints2d_px, prob.bbox_xywh, prob.intrinsics)
    kp, k = torch.from_numpy(kp).to(a.device), torch.from_numpy(k).to(a.device)
    model.to(a.device)
    fitter = SMPLify(model, load_pose_prior(a.pose_prior),
                     SMPLifyConfig(camera_iters=a.camera_iters, body_iters=a.body_iters))
    fitter(kp[:2], k[:2])  # warm-up (allocations, lazy init)

    batch_s, batch_err = timed_fit(fitter, kp, k, a.device)
    fast_joints = fitter.joints_model
    fitter.joints_model = FullMeshJoints(model, fast_joints.available)
    mesh_s, _ = timed_fit(fitter, kp, k, a.device)
    fitter.joints_model = fast_joints
    loop_s, loop_err = 0.0, []
    for i in range(a.loop_samples):
        sec, err = timed_fit(fitter, kp[i:i + 1], k[i:i + 1], a.device)
        loop_s += sec
        loop_err.append(err)
    batched = a.batch / batch_s
    looped = a.loop_samples / loop_s
    from hmr.core.utils.machine import machine_line

    print(f"device {a.device}, {a.camera_iters}+{a.body_iters} Adam steps; {machine_line()}")
    print(f"batched (batch {a.batch}):      {batched:8.2f} fits/s  ({batch_s:.1f} s for {a.batch})")
    print(f"loop (batch 1, {a.loop_samples} samples): {looped:8.2f} fits/s  ({loop_s:.1f} s)")
    print(f"batched, full mesh each step:  {a.batch / mesh_s:8.2f} fits/s  ({mesh_s:.1f} s for {a.batch})")
    print(f"speed-up batched vs loop: {batched / looped:.1f}x; joints-only vs full-mesh forward: "
          f"{mesh_s / batch_s:.1f}x")
    same = torch.cat(loop_err)
    print(f"median 2D error (crop px) on the looped samples: loop {same.median():.3f}, "
          f"batched {batch_err[:a.loop_samples].median():.3f}; batched over all {batch_err.median():.3f}")


if __name__ == "__main__":
    main()
