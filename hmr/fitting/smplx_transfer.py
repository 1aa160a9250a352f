"""SMPL-X → SMPL: fit SMPL parameters to an SMPL-X body, for sources that only publish SMPL-X.

The two models share SMPL's first 22 joints (pelvis … wrists: the same names, the same
kinematic tree and the same axis-angle convention), and smplx picks the same 21 surface points
on both (nose, eyes, ears, toes, heels, finger tips). Their shape spaces and rest skeletons
differ, so SMPL-X parameters are not SMPL parameters; the transfer fits them:

1. pose the SMPL-X body (every parameter it has: body, hands, face, shape, expression);
2. targets, in SMPL's joint order (:data:`hmr.core.body.smplx_names.SMPL_FROM_SMPLX`): the 22
   body joints (weight 1), the SMPL-X middle-finger bases for SMPL's two hand joints (0.3, they
   orient the wrists), and the face and feet points (0.5; the finger tips are left out: SMPL's
   fingers do not bend);
3. start SMPL from the SMPL-X global orient and body pose (hand joints at rest), zero betas,
   and the translation that aligns the body joints' centroids;
4. minimise Σ w ‖J_smpl − target‖² / (1 cm)² + λ_pose ‖θ − θ₀‖² + λ_β ‖β‖² over global orient,
   the 21 body-joint rotations, betas and translation with L-BFGS (strong-Wolfe line search),
   a fixed number of steps: the same input gives the same output (the batch is one problem,
   so a sample's result can differ in the last digits with the batch it is fitted in).

The fit's residual (mean distance over the 22 body joints, metres) is returned per sample;
``benchmarks/smplx_transfer.py`` reports it on the mannequins, where the two bodies are the
same procedural body (a lower bound for licensed SMPL / SMPL-X, whose meshes differ).
:func:`transfer_store` applies it to a store's ``extra_smplx_*`` columns (``hmr smplx-to-smpl``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hmr.core.body import JointsOnlyBody, load_body_model
from hmr.core.body.smplx_names import SMPL_FROM_SMPLX
from hmr.core.errors import SchemaError
from hmr.core.schema import StoreWriter, open_store
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES
from hmr.fitting.smplify import SMPLParams

__all__ = ["SMPLX_PARAM_WIDTHS", "TransferConfig", "TransferResult", "TransferStoreReport",
           "smplx_params", "smplx_targets", "transfer_smplx_to_smpl", "transfer_store"]

SMPLX_PARAM_WIDTHS = {"global_orient": 3, "body_pose": 63, "betas": None, "left_hand_pose": 45,
                      "right_hand_pose": 45, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
                      "expression": None, "transl": 3}
TRANSFER_SOURCE = "smplx-transfer"
N_BODY = 22


@dataclass
class TransferConfig:
    steps: int = 12  # L-BFGS steps (each up to ``max_iter`` evaluations)
    max_iter: int = 20
    hand_weight: float = 0.3
    landmark_weight: float = 0.5
    pose_reg: float = 1e-3  # per rad², against the SMPL-X pose
    betas_reg: float = 1e-3


@dataclass
class TransferResult:
    params: SMPLParams  # global_orient (B, 3), body_pose (B, 69), betas (B, 10), transl (B, 3)
    joint_error_m: torch.Tensor  # (B,) mean distance over the 22 body joints after the fit
    initial_joint_error_m: torch.Tensor  # (B,) the same with SMPL-X's pose copied, zero betas


def _target_weights(config: TransferConfig, device, dtype) -> torch.Tensor:
    w = torch.zeros(45, dtype=dtype, device=device)
    w[:N_BODY] = 1.0
    w[22:24] = config.hand_weight
    w[24:35] = config.landmark_weight  # nose, eyes, ears, toes, heels; 35..44 are finger tips
    return w


def smplx_targets(smplx_model, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, 45, 3) SMPL-X points in SMPL's 45-joint order (SMPL's hand joints: middle-finger bases)."""
    with torch.no_grad():
        out = smplx_model(**params)
    index = torch.tensor(SMPL_FROM_SMPLX, device=out.joints.device)
    return out.joints[:, index]


def transfer_smplx_to_smpl(smpl_model, smplx_model, params: dict[str, torch.Tensor],
                           config: TransferConfig | None = None) -> TransferResult:
    """Fit SMPL (``smpl_model``: :class:`hmr.core.body.BodyModel`) to SMPL-X bodies.

    ``params``: SMPL-X parameters as ``smplx_model.forward`` takes them (``global_orient (B, 3)``,
    ``body_pose (B, 63)``, optional hands (B, 45) axis-angle, face, ``betas``, ``expression``,
    ``transl``). The SMPL translation is in the same frame as the SMPL-X one."""
    config = config or TransferConfig()
    body = JointsOnlyBody(smpl_model, h36m=False)
    ref = params["global_orient"]
    batch, dtype, device = ref.shape[0], ref.dtype, ref.device
    target = smplx_targets(smplx_model, params).to(dtype)  # (B, 45, 3)
    weight = _target_weights(config, device, dtype)
    orient0 = params["global_orient"].detach().clone()
    pose0 = params["body_pose"].detach().reshape(batch, 63).clone()
    zeros_hands = torch.zeros(batch, 6, dtype=dtype, device=device)

    def joints(orient, pose, betas, transl):
        return body(orient, torch.cat([pose, zeros_hands], dim=1), betas, transl).joints_smpl45

    betas = torch.zeros(batch, 10, dtype=dtype, device=device)
    with torch.no_grad():
        start = joints(orient0, pose0, betas, torch.zeros(batch, 3, dtype=dtype, device=device))
        transl0 = (target[:, :N_BODY] - start[:, :N_BODY]).mean(dim=1)
        initial = (joints(orient0, pose0, betas, transl0) - target)[:, :N_BODY].norm(dim=-1).mean(dim=1)
    orient, pose = orient0.clone().requires_grad_(), pose0.clone().requires_grad_()
    betas, transl = betas.requires_grad_(), transl0.clone().requires_grad_()
    opt = torch.optim.LBFGS([orient, pose, betas, transl], lr=1.0, max_iter=config.max_iter,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        residual = ((joints(orient, pose, betas, transl) - target) / 0.01).square().sum(-1)  # (B, 45)
        loss = (residual * weight).sum() + config.pose_reg * (
            (pose - pose0).square().sum() + (orient - orient0).square().sum()) + config.betas_reg * betas.square().sum()
        loss.backward()
        return loss

    for _ in range(config.steps):
        opt.step(closure)
    with torch.no_grad():
        final = joints(orient, pose, betas, transl)
        error = (final - target)[:, :N_BODY].norm(dim=-1).mean(dim=1)
    params_out = SMPLParams(orient.detach(), torch.cat([pose.detach(), zeros_hands], dim=1), betas.detach(),
                            transl.detach())
    return TransferResult(params_out, error, initial)


# ---------------------------------------------------------------- stores
@dataclass
class TransferStoreOptions:
    batch_size: int = 64
    device: str = "cpu"
    body_model: str | None = None  # SMPL folder (default: $HMR_BODY_MODEL or the mannequin)
    smplx_model: str | None = None  # SMPL-X folder (default: $HMR_SMPLX_MODEL or the SMPL-X mannequin)
    smplx_kid_template: str | None = None  # AGORA's smplx_kid_template.npy: rows with a kid shape value
    flat_hand_mean: bool = False  # for stores without extra_smplx_flat_hand_mean: hand poses are absolute
    out: str | None = None  # default: rewrite the input store in place (atomically)
    overwrite: bool = False
    config: TransferConfig | None = None


@dataclass
class TransferStoreReport:
    out: Path
    samples: int
    transferred: int
    skipped: dict[str, int]  # reason -> rows
    mean_joint_error_mm: float
    max_joint_error_mm: float


def _rows(cols: dict, name: str, n: int) -> np.ndarray | None:
    """Column ``extra_smplx_<name>`` as (n, width) (scalars: (n, 1)), or None when absent."""
    values = cols.get(f"extra_smplx_{name}")
    return None if values is None else np.asarray(values).reshape(n, -1)


def _smplx_rows(cols: dict) -> np.ndarray:
    """Rows that carry SMPL-X: ``extra_has_smplx`` where the store has it, else any non-zero
    pose, shape or translation value."""
    n = len(cols["image_path"])
    if "extra_has_smplx" in cols:
        return np.asarray(cols["extra_has_smplx"]).astype(bool).reshape(n)
    have = np.zeros(n, bool)
    for name in ("global_orient", "body_pose", "betas", "transl"):
        col = _rows(cols, name, n)
        if col is not None:
            have |= col.any(axis=1)
    return have


def _pca_counts(cols: dict, n: int) -> np.ndarray:
    """(n,) PCA components of each row's hand poses, 0 for axis-angle: ``extra_smplx_hand_pca``
    or ``extra_smplx_num_pca_comps`` (zeroed where ``extra_smplx_use_pca`` is false)."""
    for name in ("hand_pca", "num_pca_comps"):
        col = _rows(cols, name, n)
        if col is not None:
            counts = col[:, 0].astype(int)
            use = _rows(cols, "use_pca", n)
            return counts * use[:, 0].astype(bool) if use is not None else counts
    return np.zeros(n, int)


def _kid_shape(cols: dict, n: int) -> np.ndarray:
    """(n,) the kid-template weight (AGORA's 11th shape value, ``extra_smplx_kid_beta``); zeros
    for adults or without the column."""
    kid = _rows(cols, "kid_beta", n)
    return np.zeros(n, np.float32) if kid is None else kid[:, 0].astype(np.float32)


def _hand_pose(cols: dict, side: str, idx: np.ndarray, model, flat: np.ndarray, dtype, device) -> torch.Tensor | None:
    """(b, 45) absolute axis-angle hand pose: PCA coefficients expanded with the model's
    components, the model's mean hand added where the row's pose is relative to it (smplx's
    ``flat_hand_mean`` false); the model itself runs with a flat mean."""
    col = _rows(cols, f"{side}_hand_pose", len(cols["image_path"]))
    if col is None:
        return None
    values = torch.as_tensor(col[idx].astype(np.float32), dtype=dtype, device=device)
    counts = _pca_counts(cols, len(cols["image_path"]))[idx]
    out = torch.zeros(len(idx), 45, dtype=dtype, device=device)
    full = counts == 0
    if full.any():
        if values.shape[1] != 45:
            raise SchemaError(f"extra_smplx_{side}_hand_pose has {values.shape[1]} values per row and no PCA count "
                              "(extra_smplx_hand_pca / extra_smplx_num_pca_comps): expected 45 (axis-angle)")
        mask = torch.from_numpy(full).to(device)
        out[mask] = values[mask]
    for count in np.unique(counts[~full]):
        rows = torch.from_numpy(counts == count).to(device)
        out[rows] = model.hand_pca_to_axis_angle(values[rows, :count], side)
    relative = torch.from_numpy(~flat[idx]).to(device)
    return out + relative[:, None].to(dtype) * model.hand_mean(side)


def smplx_params(cols: dict, idx: np.ndarray, model, dtype, device, flat_hand_mean: bool = False
                 ) -> dict[str, torch.Tensor]:
    """SMPL-X parameters of rows ``idx`` as ``model.forward`` takes them (``model`` loaded with
    ``flat_hand_mean=True``; hand poses made absolute here)."""
    n = len(cols["image_path"])

    def col(name: str) -> torch.Tensor | None:
        values = _rows(cols, name, n)
        return None if values is None else torch.as_tensor(values[idx].astype(np.float32), dtype=dtype, device=device)

    params: dict[str, torch.Tensor | None] = {name: col(name) for name in SMPLX_PARAM_WIDTHS
                                              if name not in ("left_hand_pose", "right_hand_pose")}
    flat_col = _rows(cols, "flat_hand_mean", n)
    flat = np.full(n, flat_hand_mean) if flat_col is None else flat_col[:, 0].astype(bool)
    for side in ("left", "right"):
        params[f"{side}_hand_pose"] = _hand_pose(cols, side, idx, model, flat, dtype, device)
    if params["betas"] is not None:
        width = model.num_betas - int(model.kid)
        adult = params["betas"][:, :width]
        params["betas"] = torch.nn.functional.pad(adult, (0, width - adult.shape[1]))
        if model.kid:  # loaded with the kid template: its weight is the last value
            kid = torch.as_tensor(_kid_shape(cols, n)[idx], dtype=dtype, device=device)
            params["betas"] = torch.cat([params["betas"], kid[:, None]], dim=1)
    if params["expression"] is not None:
        expr = params["expression"][:, :model.num_expression_coeffs]
        params["expression"] = torch.nn.functional.pad(expr, (0, model.num_expression_coeffs - expr.shape[1]))
    for name, width in SMPLX_PARAM_WIDTHS.items():
        if width is not None and params[name] is not None and params[name].shape[1] != width:
            raise SchemaError(f"extra_smplx_{name} has {params[name].shape[1]} values per row, expected {width}")
    if params["global_orient"] is None or params["body_pose"] is None:
        raise SchemaError("the store has no extra_smplx_global_orient / extra_smplx_body_pose columns")
    return {k: v for k, v in params.items() if v is not None}


def _skip(todo: np.ndarray, mask: np.ndarray, reason: str, skipped: dict) -> np.ndarray:
    hit = todo & mask
    if hit.any():
        skipped[reason] = skipped.get(reason, 0) + int(hit.sum())
    return todo & ~mask


def _model_gender(cols: dict, n: int) -> np.ndarray:
    """(n,) GENDERS code of each row's SMPL-X model: ``extra_smplx_gender``, else ``gender``."""
    col = _rows(cols, "gender", n)
    return (col[:, 0] if col is not None else np.asarray(cols["gender"])).astype(int)


def _transfer_block(cols: dict, models: dict, opts: TransferStoreOptions, skipped: dict) -> dict:
    n = len(cols["image_path"])
    out = dict(cols)
    for name in ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl", "has_smpl",
                 "smpl_source", "has_smpl_transl", "gender"):
        out[name] = cols[name].copy()
    error = np.full(n, -1.0, np.float32)
    todo = _smplx_rows(cols) & ~cols["has_smpl"].astype(bool)
    frame = _rows(cols, "in_camera_frame", n)
    if frame is not None:  # PROX's MoSh++ fits: Vicon frame, the camera is not applied to them
        todo = _skip(todo, ~frame[:, 0].astype(bool), "SMPL-X not in the camera frame", skipped)
    if opts.smplx_kid_template is None:
        todo = _skip(todo, _kid_shape(cols, n) != 0, "kid shape without --smplx-kid-template", skipped)
    has_transl_col = _rows(cols, "has_transl", n)
    has_transl = (np.full(n, "extra_smplx_transl" in cols) if has_transl_col is None
                  else has_transl_col[:, 0].astype(bool))
    genders = _model_gender(cols, n)
    for code in np.unique(genders[todo]):
        rows = np.flatnonzero(todo & (genders == code))
        smpl_model, smplx_model = models[GENDERS[int(code)]]
        for s in range(0, len(rows), opts.batch_size):
            idx = rows[s:s + opts.batch_size]
            params = smplx_params(cols, idx, smplx_model, torch.float32, opts.device, opts.flat_hand_mean)
            res = transfer_smplx_to_smpl(smpl_model, smplx_model, params, opts.config)
            p = res.params
            out["smpl_global_orient"][idx] = p.global_orient.cpu().numpy()
            out["smpl_body_pose"][idx] = p.body_pose.cpu().numpy()
            out["smpl_betas"][idx] = p.betas.cpu().numpy()
            out["smpl_transl"][idx] = np.where(has_transl[idx, None], p.transl.cpu().numpy(), 0.0)
            out["has_smpl_transl"][idx] = has_transl[idx]
            out["has_smpl"][idx] = True
            out["smpl_source"][idx] = SMPL_SOURCES.index(TRANSFER_SOURCE)
            out["gender"][idx] = code  # the SMPL model fitted: the SMPL-X model's gender
            error[idx] = 1000.0 * res.joint_error_m.cpu().numpy()
    out["extra_smplx_transfer_error_mm"] = error
    return out


def transfer_store(store_path: str | os.PathLike, options: TransferStoreOptions | None = None
                   ) -> TransferStoreReport:
    """Add SMPL, fitted to the SMPL-X columns, to every row that has SMPL-X and no SMPL.

    Writes ``options.out`` or rewrites the store in place (a new store under a temporary name,
    renamed over the old one when complete); a store with a converter's output manifest
    (``<store>.manifest.json``, which records its digest) is never rewritten in place.
    Transferred rows get ``has_smpl``, ``smpl_source = "smplx-transfer"``, ``smpl_*``,
    ``gender`` (the SMPL-X model's, whose SMPL counterpart was fitted), ``smpl_transl`` where the
    SMPL-X translation is known, and ``extra_smplx_transfer_error_mm`` (mean body-joint
    residual; -1 elsewhere). Other rows are copied unchanged. Columns read: see docs (SMPL-X)."""
    opts = options or TransferStoreOptions()
    store = open_store(store_path)
    out_path = Path(opts.out) if opts.out else Path(store_path)
    in_place = out_path.resolve() == Path(store_path).resolve()
    if not in_place and out_path.exists() and not opts.overwrite:
        raise SchemaError("the output store exists (pass overwrite to replace it)", path=out_path)
    manifest = Path(store_path).with_name(Path(store_path).name + ".manifest.json")  # the converter's
    if in_place and manifest.exists():
        raise SchemaError(f"the store has an output manifest ({manifest.name}) recording its digest: rewriting it in "
                          "place would make it fail verification; write a new store (--out)", path=store_path)
    if not any(f.startswith("extra_smplx_") for f in store.fields):
        raise SchemaError("the store has no extra_smplx_* columns (nothing to transfer)", path=store_path)
    gender_field = "extra_smplx_gender" if "extra_smplx_gender" in store.fields else "gender"
    genders = sorted({GENDERS[int(g)] for g in np.unique(store.read(gender_field))})
    kid = {} if opts.smplx_kid_template is None else {"kid_template": opts.smplx_kid_template}
    # As many shape values as the store keeps (SMPL-X files hold up to 300): none is dropped.
    betas_width = 10 if "extra_smplx_betas" not in store.fields else max(
        10, int(np.prod(store.read("extra_smplx_betas", 0, 1).shape[1:])))
    models = {g: (load_body_model(opts.body_model, gender=g, device=opts.device),
                  load_body_model(opts.smplx_model, gender=g, device=opts.device, model_type="smplx",
                                  flat_hand_mean=True, num_betas=betas_width, **kid)) for g in genders}
    attrs = {k: v for k, v in store.attrs.items()
             if k not in ("complete", "num_samples", "num_keypoints", "schema_version", "created", "smpl_sources",
                          "genders")}
    core = {k: attrs.pop(k) for k in ("dataset", "split", "image_root", "keypoint_convention",
                                      "converter", "converter_version")}
    attrs["smplx_transfer"] = {"config": asdict(opts.config or TransferConfig()),
                               "body_models": {g: [m[0].source, m[1].source] for g, m in models.items()},
                               "flat_hand_mean_default": opts.flat_hand_mean,
                               "kid_template": opts.smplx_kid_template}
    skipped: dict[str, int] = {}
    errors = []
    with StoreWriter(out_path, overwrite=True, chunk_rows=store.block_rows(), attrs=attrs, **core) as writer:
        for _, cols in store.blocks(rows=min(store.block_rows(), 4096)):
            out = _transfer_block(cols, models, opts, skipped)
            writer.add_columns(out)
            err = out["extra_smplx_transfer_error_mm"]
            errors.append(err[err >= 0])
    errors_all = np.concatenate(errors) if errors else np.zeros(0)
    return TransferStoreReport(out_path, len(store), int(len(errors_all)), skipped,
                               float(errors_all.mean()) if len(errors_all) else float("nan"),
                               float(errors_all.max()) if len(errors_all) else float("nan"))
