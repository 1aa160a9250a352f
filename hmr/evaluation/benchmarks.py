"""The five test protocols, as data, and the function that scores predictions on them.

Every protocol scores the **14 joints SPIN evaluates** (keypoint convention
``spin_eval_j14``: LSP order, the 14th joint being H36M's head) in millimetres, after
subtracting the **pelvis** (H36M joint 0) from prediction and ground truth separately, the
pelvis being taken from the 17-joint H36M set *before* the 14 are selected (SPIN,
MMHuman3D, hmr-benchmarks). Predicted joints always come from the predicted **neutral**
SMPL mesh through ``J_regressor_h36m`` (the body model's ``joints_h36m17``); PA-MPJPE aligns
each sample separately (see :mod:`hmr.evaluation.metrics`).

=====================  ======================================================================
benchmark              ground truth
=====================  ======================================================================
``3dpw``               3DPW test split; GT mesh from the store's SMPL parameters with the
                       **gendered** model (``gender`` field; SPIN and MMHuman3D do the same),
                       GT joints = ``J_regressor_h36m`` of that mesh. PVE and balanced
                       metrics available.
``h36m-p2``            Human3.6M S9 + S11, **frontal camera only** (``60457274``; HMR's
                       protocol 2 = SPIN's ``h36m_valid_protocol2``); GT joints = the store's
                       mocap ``keypoints3d`` (H36M joints). PVE/balanced metrics only if the
                       store carries SMPL (MoSh) for every selected sample.
``h36m-p1``            as P2 over all four cameras (protocol 1).
``eft-coco-val``       EFT fits of COCO val 2014 as GT; **neutral** model for GT (EFT's own
``eft-lspet-test``     evaluation uses the male model when gender is unknown — we use the
``eft-ochuman-test``   neutral one and say so); otherwise exactly the 3DPW path. No public
                       code defines these protocols (docs/datasets.md, evaluation): this is our definition.
``smpl``               any store with SMPL ground truth (synthetic data, other test sets),
                       scored exactly like ``3dpw``; accepts every dataset name.
=====================  ======================================================================

H36M camera selection reads the camera id from the ``sequence``, ``source_key`` or
``image_path`` string of each sample (the H36M converter writes it there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hmr.core.errors import ConfigError, SchemaError
from hmr.core.keypoints import convert_keypoints, get_convention
from hmr.core.schema.fields import GENDERS
from hmr.core.sources import get_source
from hmr.evaluation.metrics import mesh_rarity, mpjpe, pa_mpjpe, pve
from hmr.models.hmr import smpl_output

EVAL_CONVENTION = "spin_eval_j14"
ROOT_JOINT = "pelvis"
H36M_FRONTAL_CAMERA = "60457274"


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    #: the sources (hmr.core.sources names) whose stores this benchmark scores (empty: any)
    sources: tuple[str, ...]
    #: "smpl" (GT mesh from the store's SMPL parameters) or "keypoints3d" (mocap joints)
    gt_source: str
    #: "store" (gendered GT body model from the gender field) or "neutral"
    gt_gender: str = "neutral"
    #: keep only samples of this camera (H36M protocol 2)
    camera: str | None = None
    notes: str = ""
    #: store ``split`` attributes accepted (empty: any); our converters' split names
    splits: tuple[str, ...] = ()

    @property
    def datasets(self) -> tuple[str, ...]:
        """Store ``dataset`` attributes accepted: each source's name and its older spellings
        (stores converted before the naming rule say ``eft-coco``)."""
        return tuple(n for s in self.sources for n in get_source(s).spellings())


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("3dpw", "3DPW test", ("pw3d",), "smpl", "store", splits=("test",),
              notes="gendered GT mesh, neutral prediction, 14 joints from J_regressor_h36m"),
    Benchmark("h36m-p2", "Human3.6M P2", ("h36m",), "keypoints3d", camera=H36M_FRONTAL_CAMERA,
              splits=("test_p2", "test_p1"), notes="S9+S11, frontal camera, mocap joints"),
    Benchmark("h36m-p1", "Human3.6M P1", ("h36m",), "keypoints3d", splits=("test_p1",),
              notes="S9+S11, all cameras, mocap joints"),
    Benchmark("eft-coco-val", "EFT-COCO-val", ("eft_coco",), "smpl", splits=("val",),
              notes="EFT fits as GT, neutral model"),
    Benchmark("eft-lspet-test", "EFT-LSPET-test", ("eft_lspet",), "smpl", splits=("test",),
              notes="EFT fits as GT, neutral model"),
    Benchmark("eft-ochuman-test", "EFT-OCHuman-test", ("eft_ochuman",), "smpl", splits=("test",),
              notes="EFT fits as GT, neutral model"),
    Benchmark("smpl", "SMPL test set", (), "smpl", "store",
              notes="any store with SMPL ground truth (e.g. hmr synth), scored like 3DPW"),
)}


def get_benchmark(name: str) -> Benchmark:
    key = name.lower().replace("_", "-")
    if key not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[key]


def select_samples(bench: Benchmark, store) -> np.ndarray:
    """Store rows the benchmark scores ``(M,)`` int64."""
    n = len(store)
    keep = np.ones(n, dtype=bool)
    if bench.camera is not None:
        text = [store.read(f) for f in ("sequence", "source_key", "image_path")]
        keep &= np.array([any(bench.camera in str(t[i]) for t in text) for i in range(n)], dtype=bool)
        if not keep.any():
            raise SchemaError(f"no sample of camera {bench.camera} (needed by {bench.name}); "
                              "is this the H36M test store?", path=store.path)
    if bench.gt_source == "smpl":
        has_smpl = store.read("has_smpl").astype(bool)
        missing = np.flatnonzero(keep & ~has_smpl)
        if missing.size:
            raise SchemaError(f"{bench.name} needs SMPL ground truth; {missing.size} samples lack it",
                              index=int(missing[0]), path=store.path)
    return np.flatnonzero(keep).astype(np.int64)


@dataclass
class SampleErrors:
    """Per-sample results of one benchmark (millimetres)."""

    index: np.ndarray  # (N,) store rows
    mpjpe_mm: np.ndarray  # (N,)
    pa_mpjpe_mm: np.ndarray  # (N,)
    valid_joints: np.ndarray  # (N,) joints scored per sample
    pve_mm: np.ndarray | None = None  # (N,) when GT meshes exist
    rarity_mm: np.ndarray | None = None  # (N,) distance of the GT mesh to the mean mesh


BodyModelFor = Callable[[str], torch.nn.Module]  # gender name → body model


def _eval_indices(device: torch.device) -> tuple[torch.Tensor, int]:
    h36m = get_convention("h36m")
    j14 = torch.as_tensor(h36m.indices(list(get_convention(EVAL_CONVENTION).joint_names)), device=device)
    return j14, h36m.index(ROOT_JOINT)


def _gt_meshes(bench: Benchmark, cols: dict[str, np.ndarray], body_model_for: BodyModelFor,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """GT vertices ``(B, V, 3)`` and H36M-17 joints ``(B, 17, 3)`` (m) from stored SMPL."""
    by_gender = bench.gt_gender == "store" or bench.gt_source == "keypoints3d"
    gender = cols["gender"].astype(int) if by_gender else np.zeros(len(cols["gender"]), int)
    verts = joints = None
    for code in np.unique(gender):
        rows = np.flatnonzero(gender == code)
        model = body_model_for(GENDERS[int(code)])
        out = model(global_orient=torch.as_tensor(cols["smpl_global_orient"][rows], device=device),
                    body_pose=torch.as_tensor(cols["smpl_body_pose"][rows], device=device),
                    betas=torch.as_tensor(cols["smpl_betas"][rows], device=device))
        if verts is None:
            verts = out.vertices.new_zeros((len(gender), *out.vertices.shape[1:]))
            joints = out.vertices.new_zeros((len(gender), *out.joints_h36m17.shape[1:]))
        verts[rows], joints[rows] = out.vertices, out.joints_h36m17
    return verts, joints


def _gt_mocap_joints(cols: dict[str, np.ndarray], convention: str, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """GT H36M-17 joints ``(B, 17, 3)`` and their confidence ``(B, 17)`` from keypoints3d."""
    kp, _ = convert_keypoints(cols["keypoints3d"], convention, "h36m")  # (B, 17, 4)
    kp = torch.as_tensor(np.asarray(kp), device=device)
    return kp[..., :3], kp[..., 3]


@torch.no_grad()
def score_predictions(bench: Benchmark, store, indices: np.ndarray, pose_rotmat: torch.Tensor,
                      betas: torch.Tensor, body_model_for: BodyModelFor, *,
                      mean_vertices: torch.Tensor | None = None, batch_size: int = 256,
                      device: str | torch.device = "cpu") -> SampleErrors:
    """Score predictions for store rows ``indices (N,)``: ``pose_rotmat (N, 24, 3, 3)``,
    ``betas (N, 10)``. ``mean_vertices (V, 3)`` (m) enables the balanced-metric rarity."""
    device = torch.device(device)
    j14, root = _eval_indices(device)
    neutral = body_model_for("neutral")
    fields = ["gender", "keypoints3d", "smpl_global_orient", "smpl_body_pose", "smpl_betas", "has_smpl"]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("mpjpe", "pa", "valid", "pve", "rarity")}
    # H36M: PVE and balanced metrics only when every selected sample has (MoSh) SMPL.
    with_mesh = bench.gt_source == "smpl" or bool(store.read("has_smpl").astype(bool)[indices].all())
    for start in range(0, len(indices), batch_size):
        rows = indices[start:start + batch_size]
        cols = _read_rows(store, rows, fields)
        pred = smpl_output(neutral, pose_rotmat[start:start + len(rows)].to(device).float(),
                           betas[start:start + len(rows)].to(device).float())
        pred_verts, pred_j17 = pred.vertices, pred.joints_h36m17  # (B, V, 3), (B, 17, 3)
        if with_mesh:
            gt_verts, gt_j17 = _gt_meshes(bench, cols, body_model_for, device)
            conf = torch.ones(gt_j17.shape[:2], device=device)
        if bench.gt_source == "keypoints3d":
            gt_j17, conf = _gt_mocap_joints(cols, store.attrs["keypoint_convention"], device)
        pred_rel = (pred_j17 - pred_j17[:, root:root + 1])[:, j14].double() * 1000.0  # (B, 14, 3) mm
        gt_rel = (gt_j17 - gt_j17[:, root:root + 1])[:, j14].double() * 1000.0
        mask = conf[:, j14] > 0  # (B, 14)
        parts["mpjpe"].append(mpjpe(pred_rel, gt_rel, mask).cpu().numpy())
        parts["pa"].append(pa_mpjpe(pred_rel, gt_rel, mask).cpu().numpy())
        parts["valid"].append(mask.sum(-1).cpu().numpy())
        if with_mesh:
            parts["pve"].append((pve(pred_verts, gt_verts) * 1000.0).cpu().numpy())
            if mean_vertices is not None:
                rarity = mesh_rarity(gt_verts, mean_vertices.to(device, gt_verts.dtype)) * 1000.0
                parts["rarity"].append(rarity.cpu().numpy())
    cat = {k: np.concatenate(v).astype(np.float64) if v else None for k, v in parts.items()}
    return SampleErrors(index=np.asarray(indices), mpjpe_mm=cat["mpjpe"], pa_mpjpe_mm=cat["pa"],
                        valid_joints=cat["valid"].astype(np.int64), pve_mm=cat["pve"], rarity_mm=cat["rarity"])


def _read_rows(store, rows: np.ndarray, fields: list[str]) -> dict[str, np.ndarray]:
    """Columns of ``rows`` (sorted, usually contiguous): one block read per field."""
    lo, hi = int(rows.min()), int(rows.max()) + 1
    return {f: store.read(f, lo, hi)[rows - lo] for f in fields}
