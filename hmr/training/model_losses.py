"""One training loss per model type, chosen once when the trainer is built.

``build_model_loss(parts)`` returns the loss of ``parts.config.model.type``, a callable
``loss(out, batch) -> (total, {term: value})`` with the names of its terms in ``TERMS``;
the trainer's step calls it and nothing else (docs/architecture.md, "Where a new thing goes":
a new algorithm's loss is a module of its own here and one entry of :data:`MODEL_LOSSES`).

| ``model.type`` | loss | terms beyond the SMPL branch's |
| --- | --- | --- |
| ``hmr`` (HMR and SPIN) | :class:`~hmr.training.smpl_objective.SmplObjective` | none |
| ``graphcmr`` | :class:`~hmr.training.graphcmr_objective.GraphCMRObjective` | mesh L1, the mesh's keypoints |
| ``pare`` | :class:`~hmr.training.pare_objective.PAREObjective` | part segmentation |
| ``graphormer`` | :class:`~hmr.training.graphormer_objective.GraphormerObjective` | its own: no SMPL branch |

SPIN trains an HMR network with SMPLify's fits as its SMPL labels: its supervision
(:mod:`hmr.training.spin`) replaces the batch before the loss runs, the loss is HMR's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from hmr.core.errors import ConfigError
from hmr.training.config import Config
from hmr.training.graphcmr_objective import GraphCMRObjective
from hmr.training.graphormer_objective import GraphormerObjective
from hmr.training.objective import Objective
from hmr.training.pare_objective import PAREObjective
from hmr.training.smpl_objective import SmplObjective


class ModelLoss(Protocol):
    TERMS: tuple[str, ...]

    def __call__(self, out, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


@dataclass(frozen=True)
class LossParts:
    """What the trainer has built that a model type's loss may use."""

    config: Config
    objective: Objective  # the SMPL terms and Balanced MSE's σ (optimised and checkpointed by the trainer)
    body_model: nn.Module  # the full body model: ground-truth meshes, joint regressors
    loss_body: nn.Module  # the body model posed at the joint regressors' vertices only
    model: nn.Module  # the network (Graphormer's loss reads its coarse mesh levels)


#: ``model.type`` -> its loss, built from the trainer's parts
MODEL_LOSSES: dict[str, Callable[[LossParts], ModelLoss]] = {
    "hmr": lambda p: SmplObjective(p.objective, p.loss_body),
    "graphcmr": lambda p: GraphCMRObjective(p.config, p.objective, p.loss_body, p.body_model),
    "pare": lambda p: PAREObjective(p.config, p.objective, p.loss_body, p.body_model),
    "graphormer": lambda p: GraphormerObjective(p.config.loss, p.config.data.convention, p.body_model, p.model),
}


def build_model_loss(parts: LossParts) -> ModelLoss:
    """The loss of ``parts.config.model.type``; a type without one is a :class:`ConfigError`."""
    kind = parts.config.model.type
    build = MODEL_LOSSES.get(kind)
    if build is None:
        raise ConfigError(f"model.type = {kind!r} has no training loss: choose one of {sorted(MODEL_LOSSES)} "
                          "(hmr.training.model_losses.MODEL_LOSSES)")
    return build(parts)
