"""One prediction type for every algorithm, and the one way to score it.

A network's forward output differs per algorithm (:class:`hmr.models.hmr.HMROutput`,
:class:`hmr.models.graphcmr.GraphCMROutput`, ...); each model class declares in ``predicts``
what it gives: ``"smpl"`` (pose rotation matrices and betas) and/or ``"vertices"`` (a mesh of
the body model's topology, regressed directly). :func:`to_prediction` reads any output into a
:class:`Prediction`; :func:`prediction_meshes` returns what the benchmarks score:

- a model with vertices is scored on them (GraphCMR's non-parametric mesh; H36M joints by
  ``J_regressor_h36m @ vertices``, as GraphCMR's ``eval.py`` does in ``nkolot/GraphCMR``,
  which reports both its non-parametric mesh ("NonParam") and the SMPL regressed from it
  ("Param"); the paper's headline numbers are the non-parametric ones);
- otherwise the SMPL parameters are posed on the (neutral) body model.

:func:`joints_from_vertices` gives every joint set of :class:`hmr.core.body.BodyOutput` from a
mesh, with the body model's own regressors (SMPL's ``J_regressor`` for the 24 kinematic
joints, smplx's vertex landmarks, SPIN's ``J_regressor_extra`` / ``J_regressor_h36m``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from hmr.core.body.smpl import BodyOutput


@dataclass
class Prediction:
    cam: torch.Tensor  # (B, 3) weak perspective [s, tx, ty]
    cam_t: torch.Tensor  # (B, 3) metres, crop camera
    pose_rotmat: torch.Tensor | None = None  # (B, 24, 3, 3)
    betas: torch.Tensor | None = None  # (B, 10)
    vertices: torch.Tensor | None = None  # (B, V, 3) metres, model frame, no translation

    def to(self, device=None, dtype=None) -> Prediction:
        return Prediction(**{f.name: None if getattr(self, f.name) is None else
                             getattr(self, f.name).to(device=device, dtype=dtype) for f in fields(self)})

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


def to_prediction(output) -> Prediction:
    """Any model output with ``cam``, ``cam_t`` and some of ``pose_rotmat``, ``betas``,
    ``vertices`` → :class:`Prediction` (fields the output lacks stay None)."""
    return Prediction(**{f.name: getattr(output, f.name, None) for f in fields(Prediction)})


def joints_from_vertices(body_model, vertices: torch.Tensor) -> BodyOutput:
    """Joint sets of a mesh ``(B, V, 3)`` of the body model's topology (see the module doc)."""
    smpl = body_model.smpl
    verts = vertices.to(smpl.J_regressor.dtype)
    joints24 = torch.einsum("jv,bvc->bjc", smpl.J_regressor, verts)  # (B, 24, 3)
    landmarks = verts[:, smpl.vertex_joint_selector.extra_joints_idxs.long()]  # (B, 21, 3)
    joints45 = torch.cat([joints24, landmarks], dim=1)
    extra = spin = h36m = None
    if body_model.j_regressor_extra is not None:
        extra = torch.einsum("jv,bvc->bjc", body_model.j_regressor_extra, verts)  # (B, 9, 3)
        spin = torch.cat([joints45, extra], dim=1)[:, body_model.spin49_index]  # (B, 49, 3)
    if body_model.j_regressor_h36m is not None:
        h36m = torch.einsum("jv,bvc->bjc", body_model.j_regressor_h36m, verts)  # (B, 17, 3)
    return BodyOutput(vertices=verts, joints_smpl24=joints24, joints_smpl45=joints45, joints_h36m17=h36m,
                      joints_extra9=extra, joints_spin49=spin)


def prediction_meshes(prediction: Prediction, body_model) -> BodyOutput:
    """What the benchmarks score: the predicted vertices when there are any, else the SMPL
    parameters posed on ``body_model`` (fp32, no translation)."""
    if prediction.vertices is not None:
        return joints_from_vertices(body_model, prediction.vertices.float())
    if prediction.pose_rotmat is None or prediction.betas is None:
        raise ValueError("a prediction needs vertices or SMPL parameters")
    rot = prediction.pose_rotmat.float()
    return body_model(global_orient=rot[:, :1], body_pose=rot[:, 1:], betas=prediction.betas.float(), pose2rot=False)
