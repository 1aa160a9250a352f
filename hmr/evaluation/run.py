"""``hmr evaluate``: run a checkpoint on a schema-v1 test store and score it.

Pipeline: open the store → pick the benchmark's samples (:func:`select_samples`) → crop each
person from its image → predict SMPL with the checkpoint → score (:func:`score_predictions`)
→ write the report (:mod:`hmr.evaluation.report`) and overlays of the worst predictions.

Crops: what the model's :class:`~hmr.core.crop.InputConfig` says (size, mean/std), cut by
:func:`hmr.core.crop.crop_person` — the square of side ``crop_scale × max(bbox w, h)`` centred
on the stored box, the geometry and normalisation the training shards use. ``crop_scale`` is,
in order: the option; the scale the checkpoint was trained with (its input config: the shard
sets' ``bbox_scale``), so the test crops frame a person as the training crops did; for
checkpoints without that record, SPIN's evaluation crops — 1.0 for the keypoint-derived boxes
of 3DPW/EFT-style converters (already 1.2× the joints' extent) and 0.9× the ``ground_truth_bb``
box of Human3.6M (SPIN's ``scale = 0.9 · max side / 200``).

Conventions written into every results file (``conventions``): the PVE convention (the
benchmark's default or ``pve_convention``), the scored joints and root, and the reference
mesh of the balanced metrics: the body of SPIN's published ``smpl_mean_params.npz`` when
``mean_params`` names that file, else the body model's zero pose and zero shape — a fixed
property of the benchmark, the same for every checkpoint (the file is not redistributable
here: it ships with SPIN's data download, not under a licence that lets us copy it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmr.core.crop import InputConfig, crop_person
from hmr.core.errors import ConfigError, DatasetFormatError
from hmr.core.geometry import rot6d_to_matrix
from hmr.core.render import render_mesh
from hmr.core.schema.store import open_store
from hmr.core.utils.atomic import atomic_path
from hmr.evaluation.benchmarks import (PVE_CONVENTIONS, ROOT_JOINT, Benchmark, SampleErrors, check_pve_convention,
                                      get_benchmark, score_predictions, select_samples)
from hmr.evaluation.report import summarise, write_report
from hmr.models import Prediction, prediction_meshes, smpl_output, to_prediction
from hmr.models.checkpoint import load_model

CROP_SCALE = {"h36m-p1": 0.9, "h36m-p2": 0.9}
OVERLAY_PX = 256  # side of the worst-prediction pictures


@dataclass
class EvalOptions:
    batch_size: int = 64
    device: str = ""  # "" = cuda if available
    num_workers: int = 2
    crop_scale: float | None = None  # None = the benchmark's default
    image_root: str = ""  # "" = the store's image_root attribute
    max_samples: int | None = None
    worst: int = 8  # overlays of the worst predictions (by PA-MPJPE)
    body_model: str | None = None  # SMPL folder; None = $HMR_BODY_MODEL or the mannequin
    allow_other_dataset: bool = False
    pve_convention: str | None = None  # None = the benchmark's (PVE_CONVENTIONS)
    mean_params: str | None = None  # SPIN's smpl_mean_params.npz for the rarity reference; None = zero pose/shape
    pve: bool = True  # False: skip PVE / bMPVPE (the only metric that poses full predicted meshes)
    exclude_marked: bool = False  # leave out the rows marked excluded in <store>.marks.json (hmr review)


def read_crop(path: Path, bbox_xywh: np.ndarray, out_px: int, scale: float, record: int) -> np.ndarray:
    """RGB uint8 crop ``(S, S, 3)`` of the person in ``path`` (:func:`hmr.core.crop.crop_person`)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetFormatError("image missing or unreadable", path=path, record=record)
    return crop_person(img, bbox_xywh, out_px, scale)


class CropDataset(torch.utils.data.Dataset):
    """Network inputs ``(3, S, S)`` of selected store rows, as ``input_config`` (its crop scale
    set) says; the columns are read up front (no store in workers)."""

    def __init__(self, image_root: Path, image_paths: np.ndarray, boxes: np.ndarray, rows: np.ndarray,
                 input_config: InputConfig):
        if input_config.crop_scale is None:
            raise ConfigError("evaluation crops need a crop scale")
        self.image_root, self.image_paths, self.boxes, self.rows = image_root, image_paths, boxes, rows
        self.input = input_config

    def __len__(self) -> int:
        return len(self.rows)

    def crop(self, i: int, out_px: int | None = None) -> np.ndarray:
        """(S, S, 3) uint8 RGB crop of item ``i`` (``out_px``: another size, same framing)."""
        return read_crop(self.image_root / str(self.image_paths[i]), self.boxes[i], out_px or self.input.size_px,
                         float(self.input.crop_scale), int(self.rows[i]))

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.input.normalise(self.crop(i)))


@torch.no_grad()
def predict(model, loader, device: torch.device) -> dict[str, torch.Tensor]:
    """Run ``model`` over ``loader`` → the fields of its :class:`hmr.models.Prediction`:
    ``pose_rotmat (N, 24, 3, 3)``, ``betas``, ``cam``, ``cam_t`` and, for mesh-regressing
    models, ``vertices (N, V, 3)`` (float32 on the CPU: 82 kB a sample)."""
    from tqdm import tqdm

    outs: dict[str, list[torch.Tensor]] = {}
    use_bf16 = device.type == "cuda"
    for img in tqdm(loader, desc="predict", unit="batch", leave=False):
        img = img.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred = to_prediction(model(img))
        for k in pred.keys():
            outs.setdefault(k, []).append(getattr(pred, k).float().cpu())
    return {k: torch.cat(v) for k, v in outs.items()}


class BodyModels:
    """Body models by gender, loaded on first use."""

    def __init__(self, path: str | None, device: torch.device):
        self.path, self.device, self._cache = path, device, {}

    def __call__(self, gender: str):
        if gender not in self._cache:
            from hmr.core.body.smpl import load_body_model

            self._cache[gender] = load_body_model(self.path, gender=gender, device=self.device)
        return self._cache[gender]


@torch.no_grad()
def reference_mesh(body_models: BodyModels, mean_params: str | os.PathLike | None = None
                   ) -> tuple[torch.Tensor, str]:
    """The balanced metrics' reference mesh ``(V, 3)`` on the neutral model, and its description:
    SPIN's ``smpl_mean_params.npz`` body (the one Ren et al. measure rarity from) when given,
    else the zero pose and zero shape. Never the evaluated checkpoint's own parameters."""
    from hmr.models.regressor import load_mean_params

    neutral = body_models("neutral")
    if mean_params:
        mean = load_mean_params(mean_params)
        rot = rot6d_to_matrix(mean.pose6d.reshape(1, 24, 6).float())
        betas = mean.betas.reshape(1, -1).float()
        import hashlib

        what = f"smpl_mean_params.npz body ({Path(mean_params).name}, blake2b " \
               f"{hashlib.blake2b(Path(mean_params).read_bytes(), digest_size=8).hexdigest()})"
    else:
        rot = torch.eye(3).expand(1, 24, 3, 3)
        betas = torch.zeros(1, 10)
        what = "zero pose, zero shape (no smpl_mean_params.npz given)"
    out = smpl_output(neutral, rot.to(body_models.device), betas.to(body_models.device))
    return out.vertices[0], what


def conventions(bench: Benchmark, pve_convention: str, reference: str) -> dict[str, str]:
    """What a reader needs to compare the numbers, written into every results file."""
    joints = {"spin_eval_j14": "14 (SPIN's H36M_TO_J14 / J24_TO_J14)",
              "spin_eval_j17": "17 (SPIN's H36M_TO_J17 / J24_TO_J17)"}[bench.joints]
    return {"joints": f"{joints}, J_regressor_h36m for meshes, {ROOT_JOINT} subtracted before selection",
            "pve": f"{pve_convention}: {PVE_CONVENTIONS[pve_convention]}",
            "balanced_reference": f"neutral model, {reference}",
            "pck": "3DPCK: % of joints with error < 150 mm; AUC: mean PCK over 0..150 mm in 31 steps",
            "follows": bench.follows or "ours"}


def evaluate(checkpoint: str | os.PathLike, bench_name: str, store_path: str | os.PathLike,
             out_dir: str | os.PathLike, options: EvalOptions | None = None) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on one benchmark; returns the summary written to results.json."""
    opts = options or EvalOptions()
    model, ckpt = load_model(checkpoint, eval_device(opts))
    return evaluate_model(model, bench_name, store_path, out_dir, opts,
                          source={"checkpoint": str(checkpoint), "checkpoint_step": int(ckpt.get("step", -1))})


def eval_device(options: EvalOptions) -> torch.device:
    return torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def evaluate_model(model, bench_name: str, store_path: str | os.PathLike, out_dir: str | os.PathLike,
                   options: EvalOptions, source: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a network already built (in eval mode, on :func:`eval_device`, with ``config``
    and ``input_config`` like any model of :mod:`hmr.models`, its output read by
    :func:`hmr.models.to_prediction`): what :func:`evaluate` does after loading the
    checkpoint, and the path the baselines of :mod:`hmr.evaluation.baselines` are scored by.
    ``source``: what was evaluated (``checkpoint``, ``checkpoint_step``), written into the results."""
    opts = options
    bench = get_benchmark(bench_name)
    store = open_store(store_path)
    if not opts.allow_other_dataset:
        if bench.datasets and store.dataset not in bench.datasets:
            raise ConfigError(f"store holds dataset '{store.dataset}', benchmark {bench.name} expects one of "
                              f"{list(bench.datasets)} (pass --allow-other-dataset to override)", path=store.path)
        if bench.splits and store.split not in bench.splits:
            raise ConfigError(f"store holds split '{store.split}', benchmark {bench.name} expects one of "
                              f"{list(bench.splits)} (pass --allow-other-dataset to override)", path=store.path)
    rows = select_samples(bench, store)
    excluded = _exclude_marked(store_path, store, rows) if opts.exclude_marked else None
    if excluded is not None:
        rows = rows[~np.isin(rows, excluded["rows"])]
    if opts.max_samples:
        rows = rows[:opts.max_samples]
    device = eval_device(opts)
    body_models = BodyModels(opts.body_model, device)
    image_root = Path(opts.image_root or store.attrs.get("image_root", ""))
    scale = opts.crop_scale or model.input_config.crop_scale or CROP_SCALE.get(bench.name, 1.0)
    dataset = CropDataset(image_root, store.read("image_path")[rows], store.read("bbox_xywh")[rows], rows,
                          model.input_config.with_crop_scale(scale))
    loader = torch.utils.data.DataLoader(dataset, batch_size=opts.batch_size, num_workers=opts.num_workers,
                                         pin_memory=device.type == "cuda")
    preds = predict(model, loader, device)
    if bench.gt_source == "keypoints2d":
        return _evaluate_2d(bench, store, rows, preds, dataset, body_models, model, source, out_dir, opts, excluded)
    pve_convention = check_pve_convention(opts.pve_convention or bench.pve_convention)
    reference, reference_text = reference_mesh(body_models, opts.mean_params)
    errors = score_predictions(bench, store, rows, preds.get("pose_rotmat"), preds.get("betas"), body_models,
                               mean_vertices=reference, device=device, pve_convention=pve_convention,
                               with_pve=opts.pve, vertices=preds.get("vertices"), fast_pve=True)
    meta = {**source, "store": str(store.path), "crop_scale": scale, "body_model": opts.body_model or "default",
            "conventions": conventions(bench, pve_convention, reference_text)}
    if excluded is not None:
        meta["excluded_marked"] = excluded["summary"]
    result = summarise(bench, errors, meta=meta)
    keys = store.read("source_key")[rows]
    write_report(out_dir, result, errors, keys)
    if opts.worst:
        write_worst_overlays(Path(out_dir) / "worst", dataset, preds, errors, body_models, model, opts.worst)
    return result


def _exclude_marked(store_path, store, rows: np.ndarray) -> dict[str, Any]:
    """The benchmark rows marked excluded by ``hmr review`` (``--exclude-marked``), and the file."""
    from hmr.core.schema.marks import resolve_marks

    resolved = resolve_marks(store_path, store)  # by source identity: marks survive a re-conversion
    marked = np.array(sorted(r for r, m in resolved.rows.items() if m.get("excluded", True)), dtype=np.int64)
    marked = marked[np.isin(marked, rows)]
    # marks whose sample is not in this store (any more) are counted, not dropped in silence
    return {"file": str(resolved.file), "rows": marked,
            "summary": {"file": str(resolved.file), "count": len(marked), "not_found": len(resolved.missing)}}


def _evaluate_2d(bench: Benchmark, store, rows: np.ndarray, preds: dict[str, torch.Tensor], dataset: CropDataset,
                 body_models: BodyModels, model, source: dict[str, Any], out_dir, opts: EvalOptions,
                 excluded: dict[str, Any] | None = None) -> dict[str, Any]:
    """2D benchmarks: SPIN's 49 joints of the predicted neutral body, projected with the
    predicted crop camera and mapped back to the image, scored by 2D PCK."""
    from hmr.evaluation.benchmarks import predicted_keypoints2d, score_keypoints2d

    neutral, joints = body_models("neutral"), []
    with torch.no_grad():
        for start in range(0, len(rows), 1024):
            part = slice(start, start + 1024)
            out = prediction_meshes(Prediction(**{k: v[part].to(body_models.device) for k, v in preds.items()}),
                                    neutral)
            joints.append(out.joints_spin49.cpu().numpy())
    joints_m = np.concatenate(joints) if joints else np.zeros((0, 49, 3))
    size = dataset.input.size_px
    pred_px = predicted_keypoints2d(joints_m, preds["cam_t"].numpy(), dataset.boxes, size,
                                    float(dataset.input.crop_scale), model.config.focal_length_px * size
                                    / model.config.img_size)
    errors = score_keypoints2d(bench, store, rows, pred_px, "spin_49")
    meta = {**source, "store": str(store.path), "crop_scale": float(dataset.input.crop_scale),
            "body_model": opts.body_model or "default",
            "conventions": {"joints": "LSP 14 (lsp14) of SPIN's 49 joints (J_regressor_extra + SMPL), projected "
                                      "with the predicted crop camera", "pck": bench.follows}}
    if excluded is not None:
        meta["excluded_marked"] = excluded["summary"]
    from hmr.evaluation.report import summarise_2d

    result = summarise_2d(bench, errors, meta=meta)
    write_report(out_dir, result, errors, store.read("source_key")[rows])
    return result


def overlay_mesh(crop: np.ndarray, vertices_m: np.ndarray, cam_t: np.ndarray, faces: np.ndarray,
                 focal_length_px: float) -> np.ndarray:
    """The mesh ``(V, 3)`` translated by ``cam_t`` and rendered over the RGB ``crop`` with the
    crop camera (principal point at the crop centre, pixel centres at integers)."""
    size = crop.shape[0]
    c = (size - 1) / 2.0
    intrinsics = np.array([[focal_length_px, 0, c], [0, focal_length_px, c], [0, 0, 1.0]])
    image, _, _ = render_mesh(vertices_m + cam_t, faces, intrinsics, size, size, background=crop)
    return image


def write_png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path


def write_worst_overlays(out_dir: Path, dataset: CropDataset, preds: dict[str, torch.Tensor],
                         errors: SampleErrors, body_models: BodyModels, model, count: int) -> list[Path]:
    """Crop | predicted mesh over the crop, for the ``count`` highest PA-MPJPE samples; drawn
    at ``OVERLAY_PX`` or more (the same image region as the network's input, re-cropped at a
    size people can look at; the crop camera's focal length scales with it)."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.argsort(-errors.pa_mpjpe_mm)[:count]
    neutral = body_models("neutral")
    written = []
    for rank, i in enumerate(order):
        with torch.no_grad():
            one = Prediction(**{k: v[i:i + 1].to(body_models.device) for k, v in preds.items()})
            verts = prediction_meshes(one, neutral).vertices[0].cpu().numpy()
        size = max(OVERLAY_PX, model.config.img_size)
        crop = dataset.crop(i, size)
        overlay = overlay_mesh(crop, verts, preds["cam_t"][i].numpy(), np.asarray(neutral.faces),
                               model.config.focal_length_px * size / model.config.img_size)
        panel = np.concatenate([crop, overlay], axis=1)
        text = f"#{rank + 1} row {int(errors.index[i])} PA {errors.pa_mpjpe_mm[i]:.0f}mm"
        cv2.putText(panel, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        written.append(write_png(out_dir / f"worst_{rank + 1:02d}_row{int(errors.index[i])}.png", panel))
    return written
