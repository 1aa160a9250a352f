"""The test protocols, as data, and the function that scores predictions on them.

Every protocol scores joints regressed from the predicted **neutral** SMPL mesh through
``J_regressor_h36m`` (the body model's ``joints_h36m17``), in millimetres, after subtracting
the **pelvis** (H36M joint 0) from prediction and ground truth separately, the pelvis being
taken from the 17-joint H36M set *before* the scored joints are selected (SPIN ``eval.py``,
MMHuman3D ``human_image_dataset.py``). Scored joints: the **14** SPIN evaluates
(``spin_eval_j14``: LSP order, the 14th being H36M's head) or, on MPI-INF-3DHP, SPIN's
**17** (``spin_eval_j17`` = those 14 + pelvis, spine, jaw: SPIN's ``H36M_TO_J17`` /
``J24_TO_J17``). PA-MPJPE, PA-3DPCK and PA-AUC align each sample separately
(see :mod:`hmr.evaluation.metrics`).

=====================  ======================================================================
benchmark              ground truth
=====================  ======================================================================
``3dpw``               3DPW test split; GT mesh from the store's SMPL parameters with the
                       **gendered** model (``gender`` field; SPIN and MMHuman3D do the same),
                       GT joints = ``J_regressor_h36m`` of that mesh. PVE and balanced
                       metrics available; PVE convention MMHuman3D's (see below).
``h36m-p2``            Human3.6M S9 + S11, **frontal camera only** (``60457274``; HMR's
                       protocol 2 = SPIN's ``h36m_valid_protocol2``); GT joints = the store's
                       mocap ``keypoints3d`` (H36M joints). PVE/balanced metrics only if the
                       store carries SMPL (MoSh) for every selected sample.
``h36m-p1``            as P2 over all four cameras (protocol 1).
``mpi-inf-3dhp``       MPI-INF-3DHP test set (TS1-TS6, valid frames), SPIN's
                       ``mpi_inf_3dhp.py`` + ``eval.py``: frames whose 17 annotated 2D joints
                       all lie inside the image, GT = the ``annot3`` mocap joints (the
                       converter's ``keypoints3d``), 17 joints, pelvis root; 3DPCK@150 mm
                       and AUC with and without Procrustes.
``eft-coco-val``       EFT fits of COCO val 2014 as GT; **neutral** model for GT (EFT's own
``eft-lspet-test``     evaluation uses the male model when gender is unknown — we use the
``eft-ochuman-test``   neutral one and say so); otherwise exactly the 3DPW path. No public
                       code defines these protocols (docs/datasets.md, evaluation): this is our definition.
``smpl``               any store with SMPL ground truth (synthetic data, other test sets),
                       scored exactly like ``3dpw``; accepts every dataset name.
=====================  ======================================================================

PVE conventions (:data:`PVE_CONVENTIONS`): the predicted mesh of PVE / bMPVPE comes from the
neutral model (``neutral``, SPIN ``eval.py``) or from the model of the ground-truth gender
(``gendered``, MMHuman3D, whose 3DPW tables and Balanced-MSE results are the numbers people
compare with). Predicted *joints* always come from the neutral model (both codes agree).

Balanced-metric rarity is measured from a **fixed reference mesh** given to
:func:`score_predictions` (``mean_vertices``): the caller builds it from the published
``smpl_mean_params.npz`` or, without one, from the body model's zero pose and shape
(:func:`hmr.evaluation.run.reference_mesh`) — never from the checkpoint being evaluated, so
two models with identical predictions get identical balanced metrics.

Speed: ground truth (joints, optionally meshes, rarity) is computed once per (benchmark,
store content, rows, body models, reference mesh) and cached in memory
(:func:`ground_truth`); predicted joints come from :class:`~hmr.evaluation.regressed_joints.
RegressedJoints` (no mesh); only PVE poses full predicted meshes, in large batches.

H36M camera selection reads the camera id from the ``sequence``, ``source_key`` or
``image_path`` string of each sample (the H36M converter writes it there).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from dataclasses import dataclass

import numpy as np
import torch

from hmr.core.errors import ConfigError, SchemaError
from hmr.core.keypoints import convert_keypoints, get_convention
from hmr.core.schema.fields import GENDERS
from hmr.core.sources import get_source
from hmr.evaluation.fast_mesh import fast_mesh_for
from hmr.evaluation.metrics import auc, joint_errors, mesh_rarity, pa_joint_errors, pck, pve
from hmr.evaluation.regressed_joints import regressed_joints_for
from hmr.models.hmr import smpl_output

EVAL_CONVENTION = "spin_eval_j14"
EVAL_CONVENTION_17 = "spin_eval_j17"
ROOT_JOINT = "pelvis"
H36M_FRONTAL_CAMERA = "60457274"
PVE_CONVENTIONS = {
    "neutral": "predicted mesh from the neutral model (SPIN eval.py)",
    "gendered": "predicted mesh from the ground-truth gender's model (MMHuman3D human_image_dataset.py)",
}
#: 2D benchmarks: scored joints and PCK thresholds (fractions of the box's longer side)
KEYPOINTS2D_CONVENTION = "lsp14"
PCK2D_ALPHAS = (0.05, 0.2)
#: GT meshes kept in memory between evaluations up to this many bytes in all (joints always are)
VERTEX_CACHE_BYTES = 1 << 30
GT_CACHE_ENTRIES = 4


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    #: the sources (hmr.core.sources names) whose stores this benchmark scores (empty: any)
    sources: tuple[str, ...]
    #: "smpl" (GT mesh from the store's SMPL parameters), "keypoints3d" (mocap joints) or
    #: "keypoints2d" (2D PCK of the projected prediction)
    gt_source: str
    #: "store" (gendered GT body model from the gender field) or "neutral"
    gt_gender: str = "neutral"
    #: keep only samples of this camera (H36M protocol 2)
    camera: str | None = None
    notes: str = ""
    #: store ``split`` attributes accepted (empty: any); our converters' split names
    splits: tuple[str, ...] = ()
    #: scored joints (keypoint convention): spin_eval_j14 or spin_eval_j17; lsp14 for 2D
    joints: str = EVAL_CONVENTION
    #: default PVE convention, a key of PVE_CONVENTIONS
    pve_convention: str = "neutral"
    #: keep only samples whose scored joints are all labelled and inside the image (SPIN's 3DHP test)
    joints_inside_image: bool = False
    #: the published code whose protocol this is
    follows: str = ""

    @property
    def datasets(self) -> tuple[str, ...]:
        """Store ``dataset`` attributes accepted: each source's name and its older spellings
        (stores converted before the naming rule say ``eft-coco``)."""
        return tuple(n for s in self.sources for n in get_source(s).spellings())


_SPIN_MMH = "SPIN eval.py; MMHuman3D human_image_dataset.py"
_PCK2D = "PCK: MMPose PCKAccuracy (norm_item='bbox': the box's longer side; error < alpha x side)"
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("3dpw", "3DPW test", ("pw3d",), "smpl", "store", splits=("test",), pve_convention="gendered",
              notes="gendered GT mesh, neutral prediction, 14 joints from J_regressor_h36m", follows=_SPIN_MMH),
    Benchmark("h36m-p2", "Human3.6M P2", ("h36m",), "keypoints3d", camera=H36M_FRONTAL_CAMERA,
              splits=("test_p2", "test_p1"), notes="S9+S11, frontal camera, mocap joints",
              follows="SPIN eval.py + datasets/preprocess/h36m.py (protocol 2)"),
    Benchmark("h36m-p1", "Human3.6M P1", ("h36m",), "keypoints3d", splits=("test_p1",),
              notes="S9+S11, all cameras, mocap joints", follows="SPIN eval.py + datasets/preprocess/h36m.py"),
    Benchmark("mpi-inf-3dhp", "MPI-INF-3DHP test", ("mpi_inf_3dhp",), "keypoints3d", splits=("test",),
              joints=EVAL_CONVENTION_17, joints_inside_image=True,
              notes="valid frames with all 17 joints in the image, annot3 mocap joints, 17 joints, pelvis root",
              follows="SPIN eval.py + datasets/preprocess/mpi_inf_3dhp.py; PCK/AUC: MMHuman3D eval_utils.py"),
    Benchmark("eft-coco-val", "EFT-COCO-val", ("eft_coco",), "smpl", splits=("val",),
              notes="EFT fits as GT, neutral model", follows="ours (the 3DPW path, neutral GT)"),
    Benchmark("eft-lspet-test", "EFT-LSPET-test", ("eft_lspet",), "smpl", splits=("test",),
              notes="EFT fits as GT, neutral model", follows="ours (the 3DPW path, neutral GT)"),
    Benchmark("eft-ochuman-test", "EFT-OCHuman-test", ("eft_ochuman",), "smpl", splits=("test",),
              notes="EFT fits as GT, neutral model", follows="ours (the 3DPW path, neutral GT)"),
    Benchmark("smpl", "SMPL test set", (), "smpl", "store", pve_convention="gendered",
              notes="any store with SMPL ground truth (e.g. hmr synth), scored like 3DPW", follows=_SPIN_MMH),
    Benchmark("lsp-test-2d", "LSP test (2D)", ("lsp",), "keypoints2d", splits=("test",), joints=KEYPOINTS2D_CONVENTION,
              notes="14 LSP joints projected with the predicted camera, 2D PCK@0.05/0.2 of the box's longer side",
              follows=_PCK2D),
    Benchmark("2d", "2D keypoints", (), "keypoints2d", joints=KEYPOINTS2D_CONVENTION,
              notes="any store with 2D keypoints (MPII, COCO, LSP...): the LSP joints it labels, scored like "
                    "lsp-test-2d", follows=_PCK2D),
)}


def get_benchmark(name: str) -> Benchmark:
    key = name.lower().replace("_", "-")
    if key not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[key]


def check_pve_convention(name: str) -> str:
    if name not in PVE_CONVENTIONS:
        raise ConfigError(f"unknown PVE convention {name!r}; choose one of {sorted(PVE_CONVENTIONS)}")
    return name


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
    if bench.joints_inside_image:
        keep &= joints_inside_image(store, bench.joints)
    if bench.gt_source == "smpl":
        has_smpl = store.read("has_smpl").astype(bool)
        missing = np.flatnonzero(keep & ~has_smpl)
        if missing.size:
            raise SchemaError(f"{bench.name} needs SMPL ground truth; {missing.size} samples lack it",
                              index=int(missing[0]), path=store.path)
    return np.flatnonzero(keep).astype(np.int64)


def joints_inside_image(store, convention: str) -> np.ndarray:
    """``(N,)`` bool: every joint of ``convention`` is labelled in 2D and lies in
    ``[0, W) x [0, H)`` (SPIN's MPI-INF-3DHP test-set rule)."""
    kp, _ = convert_keypoints(store.read("keypoints2d"), store.attrs["keypoint_convention"], convention)
    kp = np.asarray(kp, dtype=np.float64)  # (N, J, 3)
    hw = store.read("image_hw").astype(np.float64)  # (N, 2)
    inside = ((kp[..., 0] >= 0) & (kp[..., 0] < hw[:, None, 1]) & (kp[..., 1] >= 0)
              & (kp[..., 1] < hw[:, None, 0]) & (kp[..., 2] > 0))
    return inside.all(axis=1)


@dataclass
class SampleErrors:
    """Per-sample results of one benchmark (millimetres; PCK/AUC in percent)."""

    index: np.ndarray  # (N,) store rows
    mpjpe_mm: np.ndarray  # (N,)
    pa_mpjpe_mm: np.ndarray  # (N,)
    valid_joints: np.ndarray  # (N,) joints scored per sample
    pve_mm: np.ndarray | None = None  # (N,) when GT meshes exist
    rarity_mm: np.ndarray | None = None  # (N,) distance of the GT mesh to the reference mesh
    pck: np.ndarray | None = None  # (N,) 3DPCK @ 150 mm, root-aligned
    pa_pck: np.ndarray | None = None  # (N,) after Procrustes
    auc: np.ndarray | None = None  # (N,) AUC over 0..150 mm
    pa_auc: np.ndarray | None = None
    pve_convention: str | None = None  # key of PVE_CONVENTIONS used for pve_mm


BodyModelFor = Callable[[str], torch.nn.Module]  # gender name → body model


@lru_cache(maxsize=None)
def _h36m_rows(joints: str) -> tuple[tuple[int, ...], int]:
    """Rows of the scored joints and of the root in the H36M-17 set (name lookups are slow: once)."""
    h36m = get_convention("h36m")
    return tuple(h36m.indices(list(get_convention(joints).joint_names))), h36m.index(ROOT_JOINT)


def _eval_indices(joints: str, device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    rows, root = _h36m_rows(joints)
    return torch.as_tensor(rows, device=device), root


@dataclass
class GroundTruth:
    """A benchmark's ground truth for some store rows, computed once and cached."""

    joints_mm: torch.Tensor  # (N, J, 3) float64, root-relative, scored joints
    mask: torch.Tensor  # (N, J) bool
    gender: np.ndarray  # (N,) GENDERS codes of the GT body model (0 = neutral)
    has_mesh: bool
    vertices: torch.Tensor | None = None  # (N, V, 3) float32 m, when kept (VERTEX_CACHE_BYTES)
    rarity_mm: np.ndarray | None = None  # (N,)


_GT_CACHE: OrderedDict[tuple, GroundTruth] = OrderedDict()


def _digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a))
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _model_digest(model) -> str:
    smpl = getattr(model, "smpl", None)
    parts = [smpl.v_template, smpl.shapedirs] if smpl is not None else [p for p in model.buffers()][:2]
    reg = getattr(model, "j_regressor_h36m", None)
    return _digest(*parts, *([] if reg is None else [reg]))


def _gt_genders(bench: Benchmark, cols: dict[str, np.ndarray]) -> np.ndarray:
    by_gender = bench.gt_gender == "store" or bench.gt_source == "keypoints3d"
    return cols["gender"].astype(int) if by_gender else np.zeros(len(cols["gender"]), int)


def _meshes(body_model_for: BodyModelFor, gender: np.ndarray, pose_rotmat: torch.Tensor, betas: torch.Tensor,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices ``(B, V, 3)`` and H36M-17 joints ``(B, 17, 3)`` (m), each sample posed by the
    body model of its gender code; ``pose_rotmat (B, 24, 3, 3)``."""
    verts = joints = None
    for code in np.unique(gender):
        rows = torch.as_tensor(np.flatnonzero(gender == code), device=device)
        out = smpl_output(body_model_for(GENDERS[int(code)]), pose_rotmat[rows].to(device).float(),
                          betas[rows].to(device).float())
        if verts is None:
            verts = out.vertices.new_zeros((len(gender), *out.vertices.shape[1:]))
            joints = out.vertices.new_zeros((len(gender), *out.joints_h36m17.shape[1:]))
        verts[rows], joints[rows] = out.vertices, out.joints_h36m17
    return verts, joints


def _stored_rotmats(cols: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    from hmr.core.geometry import axis_angle_to_matrix

    aa = np.concatenate([cols["smpl_global_orient"], cols["smpl_body_pose"]], axis=1).reshape(-1, 24, 3)
    return axis_angle_to_matrix(torch.as_tensor(aa, dtype=torch.float64)).float(), torch.as_tensor(cols["smpl_betas"])


def _root_relative(j17: torch.Tensor, joints: str) -> torch.Tensor:
    """H36M-17 joints ``(N, 17, 3)`` (m) → scored joints minus the pelvis ``(N, J, 3)`` mm, float64."""
    sel, root = _eval_indices(joints, j17.device)
    j17 = j17.double()
    return (j17 - j17[:, root:root + 1])[:, sel] * 1000.0


def ground_truth(bench: Benchmark, store, indices: np.ndarray, body_model_for: BodyModelFor, *,
                 mean_vertices: torch.Tensor | None = None, batch_size: int = 1024,
                 device: str | torch.device = "cpu", cache: bool = True) -> GroundTruth:
    """Ground truth of store rows ``indices``: scored joints, meshes (when the benchmark has
    them) and rarity from ``mean_vertices (V, 3)``. Cached in memory by the content of the
    ground-truth columns of those rows, the body models and the reference mesh, so repeated
    evaluations of one store (training validation, several checkpoints) pose it once."""
    device = torch.device(device)
    indices = np.asarray(indices, dtype=np.int64)
    fields = ["gender", "has_smpl"] + (["keypoints3d"] if bench.gt_source == "keypoints3d" else [])
    fields += [f for f in ("smpl_global_orient", "smpl_body_pose", "smpl_betas") if f in store.fields]
    cols = _read_rows(store, indices, fields)
    has_mesh = bench.gt_source == "smpl" or bool(cols["has_smpl"].astype(bool).all())
    gender = _gt_genders(bench, cols)
    key = None
    if cache:
        models = [_model_digest(body_model_for(GENDERS[int(c)])) for c in np.unique(gender)] if has_mesh else []
        key = (bench.name, bench.gt_source, bench.gt_gender, bench.joints, store.attrs.get("keypoint_convention"),
               _digest(indices, *cols.values()), tuple(models),
               None if mean_vertices is None else _digest(mean_vertices), str(device))
        if key in _GT_CACHE:
            _GT_CACHE.move_to_end(key)
            return _GT_CACHE[key]
    if bench.gt_source == "keypoints3d":
        kp, _ = convert_keypoints(cols["keypoints3d"], store.attrs["keypoint_convention"], "h36m")  # (N, 17, 4)
        kp = torch.as_tensor(np.asarray(kp, dtype=np.float64), device=device)
        sel, _ = _eval_indices(bench.joints, device)
        joints_mm, mask = _root_relative(kp[..., :3], bench.joints), kp[:, sel, 3] > 0
    n = len(indices)
    keep = has_mesh and n * 6890 * 3 * 4 <= VERTEX_CACHE_BYTES
    verts_all, rarity, j17_parts = [], [], []
    if has_mesh:
        rot, betas = _stored_rotmats(cols)
        for start in range(0, n, batch_size):
            part = slice(start, start + batch_size)
            verts, j17 = _meshes(body_model_for, gender[part], rot[part], betas[part], device)
            j17_parts.append(j17)
            if keep:
                verts_all.append(verts)
            if mean_vertices is not None:
                rarity.append((mesh_rarity(verts, mean_vertices.to(verts)) * 1000.0).double().cpu().numpy())
    if bench.gt_source == "smpl":
        joints_mm = _root_relative(torch.cat(j17_parts), bench.joints)
        mask = torch.ones(joints_mm.shape[:2], dtype=torch.bool, device=device)
    gt = GroundTruth(joints_mm=joints_mm, mask=mask, gender=gender, has_mesh=has_mesh,
                     vertices=torch.cat(verts_all) if keep and verts_all else None,
                     rarity_mm=np.concatenate(rarity) if rarity else None)
    if key is not None:
        _GT_CACHE[key] = gt
        while len(_GT_CACHE) > GT_CACHE_ENTRIES or (len(_GT_CACHE) > 1 and _cached_vertex_bytes() > VERTEX_CACHE_BYTES):
            _GT_CACHE.popitem(last=False)  # oldest first: memory stays under one budget in all
    return gt


def _cached_vertex_bytes() -> int:
    return sum(g.vertices.numel() * g.vertices.element_size() for g in _GT_CACHE.values() if g.vertices is not None)


def clear_ground_truth_cache() -> None:
    _GT_CACHE.clear()


@contextmanager
def _one_thread():
    """Run small-tensor work on one intra-op thread: ``RegressedJoints`` and the metrics are
    hundreds of element-wise ops on ~1 MB tensors, where thread hand-offs cost more than they
    save (measured on 2 busy cores: 150k samples/s on one thread, 4-10k/s on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def predicted_joints(neutral: torch.nn.Module, pose_rotmat: torch.Tensor, betas: torch.Tensor, *,
                     batch_size: int = 1024, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """H36M-17 joints ``(N, 17, 3)`` (m, float64) of the predictions on the neutral model,
    without posing meshes when the body model allows it (:mod:`hmr.evaluation.regressed_joints`)."""
    fast = regressed_joints_for(neutral)
    parts = []
    for start in range(0, len(pose_rotmat), batch_size):
        rot = pose_rotmat[start:start + batch_size].to(device)
        b = betas[start:start + batch_size].to(device)
        if fast is not None:
            parts.append(fast(rot, b))
        else:
            parts.append(smpl_output(neutral, rot.float(), b.float()).joints_h36m17.double())
    return torch.cat(parts) if parts else torch.zeros(0, 17, 3, dtype=torch.float64, device=device)


def mesh_joints_h36m(neutral: torch.nn.Module, vertices: torch.Tensor, *, batch_size: int = 1024,
                     device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """H36M-17 joints ``(N, 17, 3)`` (m, float64) of predicted meshes ``(N, V, 3)``:
    ``J_regressor_h36m @ vertices`` (:func:`hmr.models.prediction.joints_from_vertices`)."""
    from hmr.models.prediction import joints_from_vertices

    if getattr(neutral, "j_regressor_h36m", None) is None:
        raise ConfigError("scoring predicted meshes needs J_regressor_h36m.npy next to the body model")
    parts = [joints_from_vertices(neutral, vertices[i:i + batch_size].to(device).float()).joints_h36m17.double()
             for i in range(0, len(vertices), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, 17, 3, dtype=torch.float64, device=device)


@torch.no_grad()
def score_predictions(bench: Benchmark, store, indices: np.ndarray, pose_rotmat: torch.Tensor | None,
                      betas: torch.Tensor | None, body_model_for: BodyModelFor, *,
                      mean_vertices: torch.Tensor | None = None, batch_size: int = 1024,
                      device: str | torch.device = "cpu", pve_convention: str | None = None,
                      with_pve: bool = True, cache: bool = True,
                      vertices: torch.Tensor | None = None, fast_pve: bool = False) -> SampleErrors:
    """Score predictions for store rows ``indices (N,)``: ``pose_rotmat (N, 24, 3, 3)``,
    ``betas (N, 10)``. ``mean_vertices (V, 3)`` (m): the benchmark's fixed reference mesh,
    enables the balanced-metric rarity. ``pve_convention``: a key of :data:`PVE_CONVENTIONS`
    (default: the benchmark's). ``with_pve=False`` skips PVE (the only part that poses full
    predicted meshes). ``vertices (N, V, 3)``: a model's own meshes (GraphCMR,
    :class:`hmr.models.Prediction`), scored instead of posing the SMPL parameters: joints by
    the body model's ``J_regressor_h36m``, PVE on them. ``fast_pve``: pose the predicted
    meshes of PVE with :class:`hmr.evaluation.fast_mesh.FastMesh` (same PVE to float32
    rounding, ~10x faster on CPU) instead of the body model's forward pass."""
    device = torch.device(device)
    convention = check_pve_convention(pve_convention or bench.pve_convention)
    gt = ground_truth(bench, store, indices, body_model_for, mean_vertices=mean_vertices,
                      batch_size=batch_size, device=device, cache=cache)
    neutral = body_model_for("neutral")
    with _one_thread() if device.type == "cpu" else nullcontext():
        pred_j = predicted_joints(neutral, pose_rotmat, betas, device=device) if vertices is None else \
            mesh_joints_h36m(neutral, vertices, batch_size=batch_size, device=device)
        pred_mm = _root_relative(pred_j, bench.joints)
        mask = gt.mask
        err = joint_errors(pred_mm, gt.joints_mm)  # (N, J) mm
        pa_err = pa_joint_errors(pred_mm, gt.joints_mm, mask)
        m = mask.double()
        valid = m.sum(-1)
        joint_metrics = {"mpjpe_mm": ((err * m).sum(-1) / valid.clamp_min(1.0)).cpu().numpy(),
                         "pa_mpjpe_mm": ((pa_err * m).sum(-1) / valid.clamp_min(1.0)).cpu().numpy(),
                         "pck": pck(err, mask).cpu().numpy(), "pa_pck": pck(pa_err, mask).cpu().numpy(),
                         "auc": auc(err, mask).cpu().numpy(), "pa_auc": auc(pa_err, mask).cpu().numpy()}

    pve_mm = None
    if gt.has_mesh and with_pve:
        pve_mm = _pve(gt, bench, store, indices, pose_rotmat, betas, body_model_for, convention, batch_size, device,
                      vertices, fast=fast_pve)
    return SampleErrors(index=np.asarray(indices), valid_joints=valid.cpu().numpy().astype(np.int64), pve_mm=pve_mm,
                        rarity_mm=gt.rarity_mm, pve_convention=convention if pve_mm is not None else None,
                        **joint_metrics)


def _pve(gt: GroundTruth, bench: Benchmark, store, indices: np.ndarray, pose_rotmat: torch.Tensor,
         betas: torch.Tensor, body_model_for: BodyModelFor, convention: str, batch_size: int,
         device: torch.device, vertices: torch.Tensor | None = None, fast: bool = False) -> np.ndarray:
    """Per-sample PVE (mm): predicted meshes by ``convention``, GT meshes from the cache or
    posed again batch by batch. ``fast``: predicted meshes posed and compared by
    :class:`hmr.evaluation.fast_mesh.FastMesh` (equal to the body model's forward pass up to
    float32 rounding) where the body model is SMPL."""
    pred_gender = gt.gender if convention == "gendered" else np.zeros(len(indices), int)
    rot_gt = betas_gt = None
    if gt.vertices is None:
        cols = _read_rows(store, indices, ["smpl_global_orient", "smpl_body_pose", "smpl_betas"])
        rot_gt, betas_gt = _stored_rotmats(cols)
    out = []
    for start in range(0, len(indices), batch_size):
        part = slice(start, start + batch_size)
        if gt.vertices is not None:
            gt_verts = gt.vertices[part]
        else:
            gt_verts, _ = _meshes(body_model_for, gt.gender[part], rot_gt[part], betas_gt[part], device)
        if vertices is None and fast:
            out.append(_fast_pve(body_model_for, pred_gender[part], pose_rotmat[part], betas[part], gt_verts, device))
            continue
        if vertices is not None:  # the model's own mesh: no body model, no gender
            pred_verts = vertices[part].to(device).float()
        else:
            pred_verts, _ = _meshes(body_model_for, pred_gender[part], pose_rotmat[part], betas[part], device)
        out.append((pve(pred_verts, gt_verts) * 1000.0).double().cpu().numpy())
    return np.concatenate(out)


def _fast_pve(body_model_for: BodyModelFor, gender: np.ndarray, pose_rotmat: torch.Tensor, betas: torch.Tensor,
              gt_verts: torch.Tensor, device: torch.device) -> np.ndarray:
    """PVE (mm) of one batch through :class:`FastMesh`, each sample posed by its gender's
    model (falls back on the generic forward pass for a model FastMesh cannot pose). One
    intra-op thread on CPU: measured faster on the shared 2-core machine (docs/evaluation.md)."""
    out = torch.zeros(len(gender), dtype=torch.float64)
    with _one_thread() if device.type == "cpu" else nullcontext():
        for code in np.unique(gender):
            rows = torch.as_tensor(np.flatnonzero(gender == code), device=device)
            model = body_model_for(GENDERS[int(code)])
            fast = fast_mesh_for(model)
            rot, b = pose_rotmat[rows.cpu()].to(device).float(), betas[rows.cpu()].to(device).float()
            if fast is None:
                err = pve(smpl_output(model, rot, b).vertices, gt_verts[rows])
            else:
                err = fast.pve(rot, b, gt_verts, rows)
            out[rows.cpu()] = (err * 1000.0).double().cpu()
    return out.numpy()


@dataclass
class KeypointErrors2d:
    """Per-sample results of a 2D benchmark."""

    index: np.ndarray  # (N,) store rows
    error_px: np.ndarray  # (N,) mean distance over valid joints
    pck: dict[float, np.ndarray]  # alpha -> (N,) percent
    valid_joints: np.ndarray  # (N,)


def predicted_keypoints2d(joints_m: np.ndarray, cam_t: np.ndarray, boxes_xywh: np.ndarray, crop_px: int,
                          crop_scale: float, focal_length_px: float) -> np.ndarray:
    """Image pixels ``(N, J, 2)`` of predicted joints ``(N, J, 3)`` (m): translated by the
    crop camera's ``cam_t (N, 3)``, projected with focal ``focal_length_px`` at the crop
    centre, and mapped from the crop back to the image (the inverse of
    :func:`hmr.core.crop.person_affine` for each box ``(N, 4)``)."""
    from hmr.core.geometry import project_points

    c = (crop_px - 1) / 2.0
    k = np.array([[focal_length_px, 0.0, c], [0.0, focal_length_px, c], [0.0, 0.0, 1.0]])
    crop = project_points(np.asarray(joints_m, np.float64) + np.asarray(cam_t, np.float64)[:, None], k)
    boxes = np.asarray(boxes_xywh, np.float64)
    centre = boxes[:, :2] + boxes[:, 2:] / 2.0  # (N, 2)
    side = np.maximum(boxes[:, 2:].max(1), 1.0) * float(crop_scale)  # (N,)
    return centre[:, None] + (crop - c) * (side / crop_px)[:, None, None]


def score_keypoints2d(bench: Benchmark, store, indices: np.ndarray, pred_px: np.ndarray,
                      pred_convention: str) -> KeypointErrors2d:
    """2D PCK of predictions ``pred_px (N, K, 2)`` (``pred_convention`` order) against the
    store's ``keypoints2d`` on the benchmark's joints; the norm is each stored box's longer side."""
    indices = np.asarray(indices, dtype=np.int64)
    cols = _read_rows(store, indices, ["keypoints2d", "bbox_xywh"])
    gt, _ = convert_keypoints(cols["keypoints2d"], store.attrs["keypoint_convention"], bench.joints)
    ones = np.ones((*pred_px.shape[:2], 1))
    pred, has = convert_keypoints(np.concatenate([pred_px, ones], -1), pred_convention, bench.joints)
    gt, pred = torch.as_tensor(np.asarray(gt, np.float64)), torch.as_tensor(np.asarray(pred, np.float64))
    mask = (gt[..., 2] > 0) & torch.as_tensor(np.asarray(has, bool))[None]
    norm = torch.as_tensor(np.maximum(cols["bbox_xywh"][:, 2:].max(1), 1.0).astype(np.float64))
    err = joint_errors(pred[..., :2], gt[..., :2])  # (N, J) px
    m = mask.double()
    valid = m.sum(-1)
    return KeypointErrors2d(index=indices, error_px=((err * m).sum(-1) / valid.clamp_min(1.0)).numpy(),
                            pck={a: pck(err / norm[:, None], mask, a).numpy() for a in PCK2D_ALPHAS},
                            valid_joints=valid.numpy().astype(np.int64))


def _read_rows(store, rows: np.ndarray, fields: list[str]) -> dict[str, np.ndarray]:
    """Columns of ``rows`` (sorted, usually contiguous): one block read per field."""
    if len(rows) == 0:
        return {f: store.read(f, 0, 0) for f in fields}
    lo, hi = int(rows.min()), int(rows.max()) + 1
    return {f: store.read(f, lo, hi)[rows - lo] for f in fields}
