"""PARE's body-part segmentation loss.

``mkocabas/PARE`` ``pare/losses/segmentation.py`` (``CrossEntropy``) and ``pare/losses/losses.py``
(``PARELoss``, ``use_heatmaps_loss == 'part_segm'``): cross-entropy of the 25-channel part
logits (background + 24 parts) against the rendered GT part map, averaged over every pixel of
the samples that have SMPL ground truth; logits smaller than the target are upsampled
bilinearly (``align_corners=True``) to it first. PARE weighs it with ``PART_SEGM_LOSS_WEIGHT``
(1) inside the overall ``LOSS_WEIGHT`` (60), like its keypoint and SMPL terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def part_segmentation_loss(logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``logits (B, P + 1, h, w)``, ``target (B, H, W)`` int64 labels in ``0..P``, ``keep (B,)``
    → scalar mean cross-entropy over the kept samples' pixels (0 when none is kept)."""
    keep = keep.to(logits.device).bool()
    if not bool(keep.any()):
        return logits.sum() * 0.0  # keeps the graph (and DDP's gradient buckets) intact
    logits, target = logits[keep], target[keep].to(logits.device)
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=True)
    return F.cross_entropy(logits.float(), target.long())
