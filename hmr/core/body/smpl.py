"""SMPL body model: loading (licensed SMPL files or the mannequin) and a batched forward pass.

``load_body_model(path=None, gender='neutral')`` finds the model:

1. ``path``: a folder with ``SMPL_{GENDER}.pkl`` (or the official download name
   ``basicModel_{neutral,f,m}_lbs_10_207_0_v1.*.pkl``) directly or under ``smpl/`` (smplx's
   layout), or the ``.pkl`` itself;
2. else the environment variable ``HMR_BODY_MODEL`` (same forms);
3. else the licence-free mannequin, generated once into ``$HMR_CACHE/mannequin-v<N>``
   (default ``~/.cache/hmrkit``).

The pkl is read with the restricted unpickler (official SMPL files hold chumpy objects; chumpy
is never imported) and handed to ``smplx.SMPL(data_struct=...)``, so smplx never unpickles.
The SPIN regressors (``J_regressor_extra.npy``, ``J_regressor_h36m.npy``) are looked up next to
the pkl and in its parent folder (SPIN's ``data/`` layout); without them the joint sets that
need them are None.

Forward: axis-angle ``global_orient (B, 3)``, ``body_pose (B, 69)`` or rotation matrices
``(B, 1, 3, 3)`` / ``(B, 23, 3, 3)``; ``betas (B, 10)``; ``transl (B, 3)``. Output in metres,
SMPL axes (y up, body facing +z in the rest pose). The pass is smplx's LBS on ``smplx.SMPL``'s
buffers with pre-regressed rest joints, multiply-add skinning and the SPIN regressors applied to
only the vertices they read: smplx's numbers within float32 rounding
(``tests/hmr/core/body/test_sparse_regressors.py``), faster than calling smplx although it
computes two more joint sets (``benchmarks/body_model.py``).
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

from hmr.core.body.joint_names import SPIN49_FROM_SMPL54, SPIN49_JOINT_NAMES
from hmr.core.errors import BodyModelError
from hmr.core.utils import safe_pickle

__all__ = ["BodyModel", "BodyOutput", "SPIN49_JOINT_NAMES", "default_body_model_dir",
           "describe_body_model", "ensure_mannequin", "load_body_model", "read_smpl_pickle",
           "resolve_model_file"]

ENV_BODY_MODEL = "HMR_BODY_MODEL"
ENV_CACHE = "HMR_CACHE"
SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_GENDERS = ("neutral", "male", "female")
_OFFICIAL_TAG = {"neutral": "neutral", "male": "m", "female": "f"}


@dataclass
class BodyOutput:
    """Result of :meth:`BodyModel.forward`; all in metres, camera-free model space."""

    vertices: torch.Tensor | None  # (B, 6890, 3); None from hmr.core.body.joints_only.JointsOnlyBody
    joints_smpl24: torch.Tensor  # (B, 24, 3) SMPL's kinematic joints
    joints_smpl45: torch.Tensor  # (B, 45, 3) smplx's joints (24 + 21 vertex landmarks)
    joints_h36m17: torch.Tensor | None  # (B, 17, 3) J_regressor_h36m @ vertices
    joints_extra9: torch.Tensor | None  # (B, 9, 3) J_regressor_extra @ vertices
    joints_spin49: torch.Tensor | None  # (B, 49, 3) SPIN's joint set (SPIN49_JOINT_NAMES)


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE, Path.home() / ".cache" / "hmrkit")).expanduser()


def ensure_mannequin(root: str | os.PathLike | None = None) -> Path:
    """Folder of the mannequin, generated once (atomically; concurrent callers are safe)."""
    from hmr.core.body.mannequin import MANNEQUIN_VERSION, mannequin_files

    root = Path(root) if root is not None else cache_dir()
    final = root / f"mannequin-v{MANNEQUIN_VERSION}"
    if (final / "smpl" / "SMPL_NEUTRAL.pkl").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    # A private temporary folder per process, renamed into place: the first rename wins,
    # later ones find the folder complete and throw their copy away.
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        for rel, data in mannequin_files().items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "smpl" / "SMPL_NEUTRAL.pkl").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def default_body_model_dir() -> Path:
    """The folder used when no path is given: ``$HMR_BODY_MODEL`` (a folder, or the folder of
    the pkl it names), else the cached mannequin. SPIN's extra files (``smpl_mean_params.npz``,
    ``J_regressor_*.npy``) are looked up there."""
    env = os.environ.get(ENV_BODY_MODEL)
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            path = path.parent.parent if path.parent.name == "smpl" else path.parent
        return path
    return ensure_mannequin()


def resolve_model_file(path: str | os.PathLike | None, gender: str = "neutral") -> Path:
    """The SMPL pkl for ``gender`` given a file, a folder, $HMR_BODY_MODEL or the mannequin."""
    if gender not in _GENDERS:
        raise BodyModelError(f"gender must be one of {_GENDERS}, got {gender!r}")
    if path is None:
        path = os.environ.get(ENV_BODY_MODEL) or ensure_mannequin()
    path = Path(path).expanduser()
    if path.is_file():
        return path
    name = f"SMPL_{gender.upper()}.pkl"
    for folder in (path, path / "smpl"):
        if (folder / name).is_file():
            return folder / name
        # The names of the files as downloaded from the SMPL / SMPLify sites.
        official = sorted(p for p in folder.glob("*.pkl")
                          if p.name.lower().startswith(f"basicmodel_{_OFFICIAL_TAG[gender]}_lbs_10_207_0_v1."))
        if official:
            return official[0]
    raise BodyModelError(f"no {name} in this folder or its smpl/ subfolder (pass the SMPL model "
                         f"folder, or unset {ENV_BODY_MODEL} to use the mannequin)", path=path)


def read_smpl_pickle(pkl_path: str | os.PathLike) -> dict:
    """SMPL model dict with numpy arrays (chumpy unwrapped, scipy sparse kept), checked."""
    data = safe_pickle.to_numpy_tree(
        safe_pickle.load(pkl_path, allow_scipy_sparse=True, allow_chumpy=True))
    if not isinstance(data, dict):
        raise BodyModelError("not an SMPL model (the pickle is not a dict)", path=pkl_path)
    missing = [k for k in SMPL_KEYS if k not in data]
    if missing:
        raise BodyModelError(f"not an SMPL model: missing keys {missing}", path=pkl_path)
    n_vert = np.asarray(data["v_template"]).shape[0]
    expect = {"v_template": (n_vert, 3), "weights": (n_vert, 24), "kintree_table": (2, 24),
              "posedirs": (n_vert, 3, 207), "J_regressor": (24, n_vert)}
    if np.ndim(data["shapedirs"]) != 3 or np.shape(data["shapedirs"])[:2] != (n_vert, 3):
        raise BodyModelError(f"'shapedirs' has shape {np.shape(data['shapedirs'])}, expected "
                             f"({n_vert}, 3, n_betas)", path=pkl_path, record="shapedirs")
    for key, shape in expect.items():
        if tuple(data[key].shape) != shape:
            raise BodyModelError(f"'{key}' has shape {tuple(data[key].shape)}, expected {shape}",
                                 path=pkl_path, record=key)
    return data


def _find_regressor(pkl_path: Path, name: str) -> np.ndarray | None:
    for folder in (pkl_path.parent, pkl_path.parent.parent):
        if (folder / name).is_file():
            return np.load(folder / name, allow_pickle=False)
    return None


def pose_inputs(global_orient: torch.Tensor, body_pose: torch.Tensor, pose2rot: bool | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """SMPL's pose layout and whether it is axis-angle: ``(B, 3), (B, 69), True`` or
    ``(B, 1, 3, 3), (B, 23, 3, 3), False``. Without ``pose2rot``, rotation matrices are detected
    from the trailing (3, 3) shape; (B, 3) is axis-angle even when B == 3."""
    batch = global_orient.shape[0]
    if pose2rot is None:
        pose2rot = not (global_orient.ndim >= 3 and global_orient.shape[-2:] == (3, 3))
    if pose2rot:
        return global_orient.reshape(batch, 3), body_pose.reshape(batch, 69), True
    return global_orient.reshape(batch, 1, 3, 3), body_pose.reshape(batch, 23, 3, 3), False


class BodyModel(torch.nn.Module):
    """Batched SMPL forward on top of ``smplx.SMPL`` plus SPIN's regressors and joint sets."""

    def __init__(self, data: dict, gender: str = "neutral", j_regressor_extra: np.ndarray | None = None,
                 j_regressor_h36m: np.ndarray | None = None, dtype: torch.dtype = torch.float32,
                 source: str | None = None):
        super().__init__()
        import smplx
        from smplx.utils import Struct

        self.gender, self.source = gender, source
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a notice about 10 betas
            self.smpl = smplx.SMPL(model_path="", data_struct=Struct(**data), gender=gender,
                                   dtype=dtype, create_global_orient=False, create_body_pose=False,
                                   create_betas=False, create_transl=False)
        for name, reg in (("j_regressor_extra", j_regressor_extra), ("j_regressor_h36m", j_regressor_h36m)):
            self.register_buffer(name, None if reg is None else torch.as_tensor(reg, dtype=dtype))
        self.register_buffer("spin49_index", torch.tensor(SPIN49_FROM_SMPL54, dtype=torch.long))
        # Rest joints are linear in the betas: J(β) = J_reg v_template + (J_reg shapedirs) β.
        j_reg = self.smpl.J_regressor  # (24, V)
        self.register_buffer("j_template", j_reg @ self.smpl.v_template, persistent=False)  # (24, 3)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcl->jcl", j_reg, self.smpl.shapedirs),
                             persistent=False)  # (24, 3, n_betas)

    def _lbs(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
             transl: torch.Tensor | None, pose2rot: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices ``(B, V, 3)`` and smplx's 45 joints ``(B, 45, 3)``, translated: smplx's
        ``lbs`` on smplx's own buffers, in the same order, with two changes that leave the
        numbers equal within float32 rounding and make it faster than calling smplx
        (``benchmarks/body_model.py``): the rest joints come from the betas through the
        pre-regressed ``J_regressor @ v_template`` and ``J_regressor @ shapedirs`` (no product
        over the whole shaped mesh), and skinning blends the joints' 3×4 transforms and applies
        them with three multiply-adds instead of one batched 4×4 matmul per vertex."""
        from smplx.lbs import batch_rigid_transform, batch_rodrigues

        smpl, batch = self.smpl, global_orient.shape[0]
        if pose2rot:
            rot = batch_rodrigues(torch.cat([global_orient, body_pose], dim=1).reshape(-1, 3))
            rot = rot.reshape(batch, 24, 3, 3)
        else:
            rot = torch.cat([global_orient, body_pose], dim=1)  # (B, 24, 3, 3)
        if betas.shape[0] != batch:
            betas = betas.expand(batch, -1)
        v_shaped = smpl.v_template + torch.einsum("bl,vcl->bvc", betas, smpl.shapedirs)  # (B, V, 3)
        j_rest = self.j_template + torch.einsum("bl,jcl->bjc", betas, self.j_shapedirs)  # (B, 24, 3)
        pose_feature = (rot[:, 1:] - torch.eye(3, dtype=rot.dtype, device=rot.device)).reshape(batch, -1)
        v_posed = v_shaped + (pose_feature @ smpl.posedirs).reshape(batch, -1, 3)  # (B, V, 3)
        joints24, rel = batch_rigid_transform(rot, j_rest, smpl.parents)  # (B, 24, 3), (B, 24, 4, 4)
        skin = (smpl.lbs_weights @ rel[:, :, :3].reshape(batch, 24, 12)).reshape(batch, -1, 3, 4)
        verts = torch.addcmul(skin[..., 3], skin[..., 0], v_posed[..., 0:1])  # (B, V, 3)
        verts = verts.addcmul_(skin[..., 1], v_posed[..., 1:2]).addcmul_(skin[..., 2], v_posed[..., 2:3])
        joints45 = smpl.vertex_joint_selector(verts, joints24)  # (B, 45, 3)
        if transl is not None:
            joints45 = joints45 + transl[:, None]
            verts = verts + transl[:, None]
        return verts, joints45

    def _sparse_regressors(self, regressors: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacked regressors' used columns ``(S,)`` and weights ``(J, S)``, rebuilt when a
        regressor buffer is replaced, moved or edited (the dense buffers stay the reference)."""
        key = tuple(None if reg is None else (reg.data_ptr(), reg._version, reg.dtype, reg.device)
                    for reg in regressors)
        cached = self.__dict__.get("_sparse_cache")
        if cached is None or cached[0] != key:
            dense = torch.cat([reg for reg in regressors if reg is not None])  # (J, V)
            columns = (dense != 0).any(0).nonzero()[:, 0]  # (S,)
            cached = (key, columns, dense[:, columns].contiguous())
            self.__dict__["_sparse_cache"] = cached
        return cached[1], cached[2]

    @property
    def faces(self) -> np.ndarray:
        """(13776, 3) int64 triangle indices."""
        return np.asarray(self.smpl.faces, dtype=np.int64)

    @property
    def parents(self) -> torch.Tensor:
        """(24,) parent of each joint, -1 for the pelvis."""
        return self.smpl.parents

    @property
    def num_betas(self) -> int:
        return self.smpl.num_betas

    @property
    def lbs_weights(self) -> torch.Tensor:
        """(V, 24) skinning weights."""
        return self.smpl.lbs_weights

    @property
    def v_template(self) -> torch.Tensor:
        """(V, 3) rest-pose template (metres)."""
        return self.smpl.v_template

    @property
    def shapedirs(self) -> torch.Tensor:
        """(V, 3, num_betas) shape blend shapes."""
        return self.smpl.shapedirs

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
                betas: torch.Tensor | None = None, transl: torch.Tensor | None = None,
                pose2rot: bool | None = None) -> BodyOutput:
        """Pose the body. Rotation matrices are detected from the trailing (3, 3) shape."""
        batch = global_orient.shape[0]
        global_orient, body_pose, pose2rot = pose_inputs(global_orient, body_pose, pose2rot)
        if betas is None:
            betas = global_orient.new_zeros(batch, self.num_betas)
        verts, joints45 = self._lbs(global_orient, body_pose, betas, transl, pose2rot)
        extra = h36m = spin = None
        regressors = (self.j_regressor_extra, self.j_regressor_h36m)
        if any(reg is not None for reg in regressors):
            columns, weights = self._sparse_regressors(regressors)
            # Only the vertices the regressors read (1,720 of 6,890 for SPIN's two): a gather
            # and one small product instead of two dense products over the whole mesh.
            # As one (J, S) × (S, B·3) product: a broadcast matmul would copy the weights per sample.
            used = verts.index_select(1, columns).transpose(0, 1).reshape(len(columns), -1)  # (S, B*3)
            regressed = (weights @ used).reshape(-1, batch, 3).transpose(0, 1)  # (B, 9 + 17, 3)
            rows = 0
            if self.j_regressor_extra is not None:
                rows = self.j_regressor_extra.shape[0]
                extra = regressed[:, :rows]  # (B, 9, 3)
                spin = torch.cat([joints45, extra], dim=1)[:, self.spin49_index]  # (B, 49, 3)
            if self.j_regressor_h36m is not None:
                h36m = regressed[:, rows:]  # (B, 17, 3)
        return BodyOutput(vertices=verts, joints_smpl24=joints45[:, :24], joints_smpl45=joints45,
                          joints_h36m17=h36m, joints_extra9=extra, joints_spin49=spin)


def load_body_model(path: str | os.PathLike | None = None, gender: str = "neutral",
                    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                    model_type: str = "smpl", **smplx_options):
    """Load SMPL (or the mannequin when no path and no $HMR_BODY_MODEL) onto ``device``.

    ``model_type="smplx"``: SMPL-X instead (:func:`hmr.core.body.smplx_model.load_smplx_model`:
    SMPLX_{GENDER}.npz/pkl, $HMR_SMPLX_MODEL, else the SMPL-X mannequin), with its options
    (``num_betas``, ``num_expression_coeffs``, ``flat_hand_mean``, ``use_face_contour``)."""
    if model_type == "smplx":
        from hmr.core.body.smplx_model import load_smplx_model

        return load_smplx_model(path, gender=gender, device=device, dtype=dtype, **smplx_options)
    if model_type != "smpl" or smplx_options:
        raise BodyModelError(f"model_type must be 'smpl' or 'smplx' (options only for smplx), got "
                             f"{model_type!r} with {sorted(smplx_options)}")
    pkl = resolve_model_file(path, gender)
    data = read_smpl_pickle(pkl)
    model = BodyModel(data, gender=gender, dtype=dtype, source=str(pkl),
                      j_regressor_extra=_find_regressor(pkl, "J_regressor_extra.npy"),
                      j_regressor_h36m=_find_regressor(pkl, "J_regressor_h36m.npy"))
    return model.to(device).eval()


def describe_body_model(path: str | os.PathLike | None = None, gender: str = "neutral") -> dict:
    """Facts about a body model: file, sizes, rest height, which SPIN extras were found."""
    model = load_body_model(path, gender=gender)
    with torch.no_grad():
        out = model(torch.zeros(1, 3), torch.zeros(1, 69))
    verts = out.vertices[0]
    return {
        "file": model.source, "gender": gender, "vertices": int(verts.shape[0]),
        "faces": int(model.faces.shape[0]), "betas": model.num_betas,
        "rest_height_m": round(float(verts[:, 1].max() - verts[:, 1].min()), 4),
        "J_regressor_extra": model.j_regressor_extra is not None,
        "J_regressor_h36m": model.j_regressor_h36m is not None,
    }
