"""SMPL-X body model: loading (licensed SMPL-X files or the SMPL-X mannequin) and a batched forward.

``load_smplx_model(path=None, gender='neutral')`` (also ``load_body_model(..., model_type="smplx")``)
finds the model:

1. ``path``: a folder with ``SMPLX_{GENDER}.npz`` or ``.pkl`` directly or under ``smplx/``
   (smplx's layout: ``smplx.create(folder, model_type="smplx")``), or the file itself;
2. else the environment variable ``HMR_SMPLX_MODEL`` (same forms);
3. else the licence-free SMPL-X mannequin (:mod:`hmr.core.body.mannequin_smplx`), generated once
   into ``$HMR_CACHE/mannequin-smplx-v<N>`` (default ``~/.cache/hmrkit``).

Files are read without running code: npz with ``allow_pickle=False`` (the released npz files
also hold pickled dicts, ``joint2num`` / ``part2num``, which are skipped), pkl with the restricted
unpickler (chumpy unwrapped). smplx itself unpickles whatever it opens, so unless the file is an
npz of plain arrays, smplx is handed a copy holding only the arrays it reads, written into a
temporary folder and deleted once loaded.

Forward: axis-angle ``global_orient (B, 3)``, ``body_pose (B, 63)``, hand poses ``(B, 45)`` each
(15 joints; PCA coefficients are expanded first with :meth:`SMPLXBodyModel.hand_pca_to_axis_angle`),
``jaw_pose / leye_pose / reye_pose (B, 3)``, ``betas (B, num_betas)``, ``expression
(B, num_expression)``, ``transl (B, 3)``; any of them may be None (zeros). Hand poses are relative
to the model's hand mean unless ``flat_hand_mean`` (smplx's convention, default False).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmr.core.body.smplx_names import SMPLX55_PARENTS
from hmr.core.errors import BodyModelError
from hmr.core.utils import safe_pickle

__all__ = ["SMPLXBodyModel", "SMPLXOutput", "ensure_smplx_mannequin", "load_smplx_model",
           "read_smplx_arrays", "resolve_smplx_file"]

ENV_SMPLX_MODEL = "HMR_SMPLX_MODEL"
_GENDERS = ("neutral", "male", "female")
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
                 "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
                 "lmk_faces_idx", "lmk_bary_coords")
OPTIONAL_KEYS = ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")


@dataclass
class SMPLXOutput:
    """Result of :meth:`SMPLXBodyModel.forward`; metres, model space (+ transl)."""

    vertices: torch.Tensor  # (B, 10475, 3)
    joints55: torch.Tensor  # (B, 55, 3) kinematic joints, SMPLX55_JOINT_NAMES
    joints: torch.Tensor  # (B, 127, 3) smplx's joints: 55 + 21 vertex joints + 51 face landmarks (+17)


def ensure_smplx_mannequin(root: str | os.PathLike | None = None) -> Path:
    """Folder of the SMPL-X mannequin, generated once (atomically; concurrent callers are safe)."""
    from hmr.core.body.mannequin_smplx import SMPLX_MANNEQUIN_VERSION, smplx_mannequin_files
    from hmr.core.body.smpl import cache_dir

    root = Path(root) if root is not None else cache_dir()
    final = root / f"mannequin-smplx-v{SMPLX_MANNEQUIN_VERSION}"
    done = final / "smplx" / "SMPLX_FEMALE.npz"
    if done.is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        for rel, data in smplx_mannequin_files().items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        try:
            os.rename(tmp, final)
        except OSError:
            if not done.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_smplx_file(path: str | os.PathLike | None, gender: str = "neutral") -> Path:
    """The SMPL-X npz/pkl for ``gender`` given a file, a folder, $HMR_SMPLX_MODEL or the mannequin."""
    if gender not in _GENDERS:
        raise BodyModelError(f"gender must be one of {_GENDERS}, got {gender!r}")
    if path is None:
        path = os.environ.get(ENV_SMPLX_MODEL) or ensure_smplx_mannequin()
    path = Path(path).expanduser()
    if path.is_file():
        return path
    for folder in (path, path / "smplx"):
        for ext in ("npz", "pkl"):
            if (folder / f"SMPLX_{gender.upper()}.{ext}").is_file():
                return folder / f"SMPLX_{gender.upper()}.{ext}"
    raise BodyModelError(f"no SMPLX_{gender.upper()}.npz or .pkl in this folder or its smplx/ "
                         f"subfolder (pass the SMPL-X model folder, or unset {ENV_SMPLX_MODEL} to use "
                         "the mannequin)", path=path)


class _Header:
    """Shape and dtype of an npz member, read from its .npy header without loading the data."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.shape, self.dtype, self.ndim = tuple(shape), dtype, len(shape)


def _read_npz(path: Path) -> tuple[dict, bool]:
    """The npz's small arrays (hand PCA, landmarks, kinematic tree) and headers of the large
    ones; and whether the file holds plain arrays only (nothing smplx would unpickle)."""
    import zipfile

    small = {"kintree_table", "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
             "lmk_faces_idx", "lmk_bary_coords"}
    out, plain = {}, True
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                key = member[:-4] if member.endswith(".npy") else member
                with zf.open(member) as fp:
                    version = np.lib.format.read_magic(fp)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
                if dtype.hasobject:
                    plain = False  # e.g. the released files' joint2num / part2num dicts
                    continue
                out[key] = _Header(shape, dtype)
        # Not plain: smplx gets a clean copy, so every array it reads is needed here.
        wanted = (small if plain else set(REQUIRED_KEYS + OPTIONAL_KEYS)) & set(out)
        with np.load(path, allow_pickle=False) as npz:
            for key in wanted:
                out[key] = npz[key]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BodyModelError(f"cannot read the npz: {exc}", path=path) from exc
    return out, plain


def read_smplx_arrays(path: str | os.PathLike) -> tuple[dict, bool]:
    """The SMPL-X model's arrays (the keys smplx reads), checked; and whether ``path`` is an npz
    of plain arrays that smplx may open itself. From such an npz the large arrays are not
    loaded: their entries hold only ``shape`` / ``dtype`` (smplx reads them itself)."""
    path = Path(path)
    if path.suffix == ".npz":
        data, plain = _read_npz(path)
    else:
        data = safe_pickle.to_numpy_tree(safe_pickle.load(path, allow_scipy_sparse=True, allow_chumpy=True))
        plain = False
        if not isinstance(data, dict):
            raise BodyModelError("not an SMPL-X model (the pickle is not a dict)", path=path)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BodyModelError(f"not an SMPL-X model: missing keys {missing}", path=path)
    arrays = {k: data[k] for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in data}
    if hasattr(arrays["J_regressor"], "toarray"):
        arrays["J_regressor"] = arrays["J_regressor"].toarray()
    arrays = {k: v if isinstance(v, _Header) else np.asarray(v) for k, v in arrays.items()}
    n_vert = arrays["v_template"].shape[0]
    expect = {"v_template": (n_vert, 3), "weights": (n_vert, 55), "kintree_table": (2, 55),
              "posedirs": (n_vert, 3, 486), "J_regressor": (55, n_vert), "hands_meanl": (45,),
              "hands_meanr": (45,), "lmk_bary_coords": (arrays["lmk_faces_idx"].shape[0], 3)}
    for key, shape in expect.items():
        if tuple(arrays[key].shape) != shape:
            raise BodyModelError(f"'{key}' has shape {tuple(arrays[key].shape)}, expected {shape}",
                                 path=path, record=key)
    sd = arrays["shapedirs"]
    if sd.ndim != 3 or sd.shape[:2] != (n_vert, 3) or sd.shape[2] < 20:
        raise BodyModelError(f"'shapedirs' has shape {sd.shape}, expected ({n_vert}, 3, 20 or 400)",
                             path=path, record="shapedirs")
    for key in ("hands_componentsl", "hands_componentsr"):
        if arrays[key].ndim != 2 or arrays[key].shape[1] != 45:
            raise BodyModelError(f"'{key}' has shape {arrays[key].shape}, expected (n, 45)", path=path, record=key)
    return arrays, plain


class SMPLXBodyModel(torch.nn.Module):
    """Batched SMPL-X forward on top of ``smplx.SMPLX`` (axis-angle hands, no stored parameters)."""

    def __init__(self, model_file: str | os.PathLike, arrays: dict[str, np.ndarray], gender: str = "neutral",
                 num_betas: int = 10, num_expression_coeffs: int = 10, flat_hand_mean: bool = False,
                 use_face_contour: bool = False, dtype: torch.dtype = torch.float32, source: str | None = None,
                 kid_template: str | os.PathLike | None = None):
        super().__init__()
        import smplx

        self.gender, self.source, self.kid = gender, source, kid_template is not None
        # AGORA's children: smplx appends (kid template - template) as one more shape direction.
        kid = {} if kid_template is None else {"age": "kid", "kid_template_path": str(kid_template)}
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints notices about the layout
            self.smplx = smplx.SMPLX(
                str(model_file), gender=gender, num_betas=num_betas, num_expression_coeffs=num_expression_coeffs,
                use_pca=False, flat_hand_mean=flat_hand_mean, use_face_contour=use_face_contour, dtype=dtype,
                batch_size=1, create_global_orient=False, create_body_pose=False, create_betas=False,
                create_left_hand_pose=False, create_right_hand_pose=False, create_expression=False,
                create_jaw_pose=False, create_leye_pose=False, create_reye_pose=False, create_transl=False, **kid)
        for side in ("l", "r"):
            self.register_buffer(f"hand_components_{side}",
                                 torch.as_tensor(arrays[f"hands_components{side}"], dtype=dtype))
            self.register_buffer(f"hand_mean_{side}", torch.as_tensor(arrays[f"hands_mean{side}"], dtype=dtype))

    @property
    def faces(self) -> np.ndarray:
        return np.asarray(self.smplx.faces, dtype=np.int64)

    @property
    def parents(self) -> torch.Tensor:
        return self.smplx.parents

    @property
    def num_betas(self) -> int:
        """Shape values the model takes (with a kid template: one more, the kid weight, last)."""
        return self.smplx.num_betas

    @property
    def num_expression_coeffs(self) -> int:
        return self.smplx.num_expression_coeffs

    def hand_pca_to_axis_angle(self, coeffs: torch.Tensor, side: str) -> torch.Tensor:
        """(B, n) PCA coefficients -> (B, 45) axis-angle, with the model's first n components
        (smplx's ``use_pca`` rule; the hand mean is added in forward, as smplx does)."""
        comps = self.hand_components_l if side == "left" else self.hand_components_r
        return coeffs @ comps[:coeffs.shape[-1]]

    def hand_mean(self, side: str) -> torch.Tensor:
        """(45,) the model's mean hand pose (what smplx adds unless ``flat_hand_mean``)."""
        return self.hand_mean_l if side == "left" else self.hand_mean_r

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor | None = None,
                left_hand_pose: torch.Tensor | None = None, right_hand_pose: torch.Tensor | None = None,
                jaw_pose: torch.Tensor | None = None, leye_pose: torch.Tensor | None = None,
                reye_pose: torch.Tensor | None = None, expression: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> SMPLXOutput:
        batch = global_orient.shape[0]

        def value(x: torch.Tensor | None, width: int) -> torch.Tensor:
            return global_orient.new_zeros(batch, width) if x is None else x.reshape(batch, width)

        out = self.smplx(
            global_orient=global_orient.reshape(batch, 3), body_pose=value(body_pose, 63),
            betas=value(betas, self.num_betas), expression=value(expression, self.num_expression_coeffs),
            left_hand_pose=value(left_hand_pose, 45), right_hand_pose=value(right_hand_pose, 45),
            jaw_pose=value(jaw_pose, 3), leye_pose=value(leye_pose, 3), reye_pose=value(reye_pose, 3),
            transl=value(transl, 3), return_verts=True)
        return SMPLXOutput(vertices=out.vertices, joints55=out.joints[:, :55], joints=out.joints)


def load_smplx_model(path: str | os.PathLike | None = None, gender: str = "neutral",
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                     num_betas: int = 10, num_expression_coeffs: int = 10, flat_hand_mean: bool = False,
                     use_face_contour: bool = False, kid_template: str | os.PathLike | None = None) -> SMPLXBodyModel:
    """Load SMPL-X (or the SMPL-X mannequin when no path and no $HMR_SMPLX_MODEL) onto ``device``.

    ``kid_template``: a (10475, 3) ``.npy`` (AGORA's ``smplx_kid_template.npy``, read without
    pickles); the model then takes ``num_betas + 1`` betas, the last weighing the kid template in."""
    model_file = resolve_smplx_file(path, gender)
    arrays, plain = read_smplx_arrays(model_file)
    if use_face_contour and "dynamic_lmk_faces_idx" not in arrays:
        raise BodyModelError("use_face_contour needs 'dynamic_lmk_faces_idx' / 'dynamic_lmk_bary_coords'",
                             path=model_file)
    if tuple(int(p) for p in arrays["kintree_table"][0, 1:]) != SMPLX55_PARENTS[1:]:
        raise BodyModelError("'kintree_table' is not SMPL-X's kinematic tree", path=model_file,
                             record="kintree_table")
    if kid_template is not None:
        try:
            kid_shape = np.load(kid_template, allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise BodyModelError(f"cannot read the kid template: {exc}", path=kid_template) from exc
        if kid_shape != tuple(arrays["v_template"].shape):
            raise BodyModelError(f"kid template has shape {kid_shape}, expected {tuple(arrays['v_template'].shape)}",
                                 path=kid_template)
    kwargs = dict(gender=gender, num_betas=num_betas, num_expression_coeffs=num_expression_coeffs,
                  flat_hand_mean=flat_hand_mean, use_face_contour=use_face_contour, dtype=dtype,
                  source=str(model_file), kid_template=kid_template)
    if plain:
        model = SMPLXBodyModel(model_file, arrays, **kwargs)
    else:
        with tempfile.TemporaryDirectory(prefix="hmr-smplx-") as tmp:
            clean = Path(tmp) / "SMPLX.npz"
            np.savez(clean, **arrays)
            model = SMPLXBodyModel(clean, arrays, **kwargs)
    return model.to(device).eval()
