"""Element-wise regression losses (MSE, L1) with per-element weights.

``pred`` and ``target`` may have any shape (keypoints ``(B, J, 2)``, SMPL pose ``(B, 72)``,
betas ``(B, 10)``); ``weight`` must broadcast to that shape: keypoint confidences
``(B, J, 1)``, a ``has_smpl`` mask ``(B, 1)``, ...

Reductions (``reduction=``):

- ``"mean"`` (default): ``mean(weight * err)`` over *all* elements, masked ones included. This is
  SPIN's convention for keypoints (``(conf * mse(pred, gt)).mean()``): the loss scale does not
  jump when a batch happens to hold few labelled samples.
- ``"weighted_mean"``: ``sum(weight * err) / sum(weight)`` (weight broadcast to the input), the
  mean over labelled elements only; 0 when every weight is 0.
- ``"sum"``: ``sum(weight * err)``.

Both losses compute in float32 even under bf16 autocast.
"""

from __future__ import annotations

import torch
from torch import nn

REDUCTIONS = ("mean", "weighted_mean", "sum")


def _check(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if weight is None:
        return
    try:
        fits = torch.broadcast_shapes(weight.shape, pred.shape) == pred.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"weight {tuple(weight.shape)} does not broadcast to {tuple(pred.shape)}")


def weighted_reduce(err: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Reduce an element-wise error ``err`` (any shape) with an optional broadcastable weight."""
    if weight is None:
        return err.sum() if reduction == "sum" else err.mean()
    w = weight.to(err.dtype).expand_as(err)
    # A masked element may hold NaN (a missing label): keep it out of the sum and the gradient.
    weighted = torch.where(w != 0, err * w, torch.zeros_like(err))
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean":
        return weighted.mean()
    return weighted.sum() / w.sum().clamp_min(torch.finfo(err.dtype).tiny)


class _ElementwiseLoss(nn.Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        _check(pred, target, weight)
        if weight is not None:
            # Missing labels (NaN) under a zero weight must not poison the gradient of pred.
            target = torch.where(weight.expand_as(target) != 0, target, pred.detach())
        with torch.autocast(device_type=pred.device.type, enabled=False):
            err = self._error(pred.float() - target.float())
            return weighted_reduce(err, weight, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_ElementwiseLoss):
    """Squared error ``(pred - target)**2``, weighted and reduced (see module docstring)."""

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.pow(2)


class L1Loss(_ElementwiseLoss):
    """Absolute error ``|pred - target|``, weighted and reduced (see module docstring)."""

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()
