"""SMPL-X → SMPL transfer error on the mannequins, in millimetres, and its throughput.

Random SMPL-X bodies (seeded: global orient, body pose, shape, hands, face, expression,
translation; the three genders in turn) are fitted with :func:`hmr.fitting.smplx_transfer.
transfer_smplx_to_smpl` against the SMPL mannequin. Figures:

- body-joint error: mean distance between SMPL's and SMPL-X's 22 shared joints, before the fit
  (SMPL-X's pose copied, zero betas: the baseline a plain parameter copy gives) and after it
  (mean, median, 95th percentile, max over samples);
- vertex error: the SMPL-X mannequin contains every SMPL mannequin vertex (its surface is the
  SMPL one refined), so on the mannequins the SMPL mesh has a true counterpart; mean distance
  over all 6890 vertices and over those off the hands (SMPL's fingers do not bend);
- fits per second.

The mannequins share one procedural body, so these figures are a lower bound of the error
between the licensed SMPL and SMPL-X, whose meshes and skeletons differ more.

Run:  python benchmarks/smplx_transfer.py [--samples 48] [--batch 16] [--steps 12] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def random_smplx(batch: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = lambda n, s: s * torch.randn(batch, n, generator=g)  # noqa: E731
    return dict(global_orient=r(3, 0.8), body_pose=r(63, 0.3), betas=r(10, 1.0), left_hand_pose=r(45, 0.3),
                right_hand_pose=r(45, 0.3), jaw_pose=r(3, 0.1), leye_pose=r(3, 0.1), reye_pose=r(3, 0.1),
                expression=r(10, 1.0), transl=r(3, 1.0))


def shared_vertices(smpl, smplx) -> np.ndarray:
    """(6890,) index of each SMPL mannequin vertex in the SMPL-X mannequin (same rest position)."""
    from scipy.spatial import cKDTree

    a, b = smpl.v_template.cpu().numpy(), smplx.smplx.v_template.cpu().numpy()
    dist, idx = cKDTree(b).query(a)
    if dist.max() > 1e-5:
        raise SystemExit(f"the mannequins do not share their vertices (max gap {dist.max():.2e} m)")
    return idx


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=48)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=12, help="L-BFGS steps (TransferConfig.steps)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady figures on a shared machine)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--smoke", action="store_true", help="seconds: 3 samples, 2 steps (figures meaningless)")
    a = p.parse_args()
    if a.smoke:
        a.samples, a.batch, a.steps = 3, 3, 2
    torch.set_num_threads(a.threads)

    from hmr.core.body import ensure_mannequin, ensure_smplx_mannequin, load_body_model
    from hmr.core.utils.machine import machine_line
    from hmr.fitting.smplx_transfer import TransferConfig, transfer_smplx_to_smpl

    genders = ("neutral", "male", "female")
    smpl_dir, smplx_dir = ensure_mannequin(), ensure_smplx_mannequin()  # the mannequins, whatever $HMR_* say
    models = {g: (load_body_model(smpl_dir, gender=g, device=a.device),
                  load_body_model(smplx_dir, gender=g, device=a.device, model_type="smplx")) for g in genders}
    shared = shared_vertices(*models["neutral"])
    off_hands = np.abs(models["neutral"][0].v_template.cpu().numpy()[:, 0]) < 0.66
    config = TransferConfig(steps=a.steps)
    before, after, vert_all, vert_body = [], [], [], []
    seconds = 0.0
    for b, start in enumerate(range(0, a.samples, a.batch)):
        n = min(a.batch, a.samples - start)
        smpl, smplx = models[genders[b % 3]]
        params = {k: v.to(a.device) for k, v in random_smplx(n, seed=start).items()}
        t0 = time.perf_counter()
        res = transfer_smplx_to_smpl(smpl, smplx, params, config)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        before.append(res.initial_joint_error_m.cpu().numpy())
        after.append(res.joint_error_m.cpu().numpy())
        with torch.no_grad():
            q = res.params
            v_smpl = smpl(q.global_orient, q.body_pose, q.betas, q.transl).vertices
            v_smplx = smplx(**params).vertices[:, torch.as_tensor(shared, device=v_smpl.device)]
        d = (v_smpl - v_smplx).norm(dim=-1).cpu().numpy()  # (n, 6890)
        vert_all.append(d.mean(1))
        vert_body.append(d[:, off_hands].mean(1))
    mm = lambda x: 1000 * np.concatenate(x)  # noqa: E731
    before_mm, after_mm = mm(before), mm(after)
    print(f"SMPL-X -> SMPL on the mannequins: {a.samples} random bodies, {a.steps} L-BFGS steps, batch {a.batch}, "
          f"{a.device}")
    print(f"  body-joint error before the fit (pose copied, zero betas): mean {before_mm.mean():.2f} mm")
    print(f"  body-joint error after:  mean {after_mm.mean():.2f} mm, median {np.median(after_mm):.2f}, "
          f"p95 {np.percentile(after_mm, 95):.2f}, max {after_mm.max():.2f}")
    print(f"  vertex error after: all 6890 {mm(vert_all).mean():.2f} mm, off the hands {mm(vert_body).mean():.2f} mm")
    print(f"  {a.samples / seconds:.2f} fits/s")
    print(f"  machine: {machine_line(a.threads)}")


if __name__ == "__main__":
    main()
