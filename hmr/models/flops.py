"""FLOPs and parameter counts of an HMR network with torch's own counter.

``torch.utils.flop_counter.FlopCounterMode`` counts floating-point operations of the
matrix-multiply and convolution kernels (a multiply-add = 2 FLOPs); element-wise operations
(activations, normalisation) are not counted. Many papers, the HMR benchmark included (via
mmcv/fvcore), report multiply-accumulates under the name "FLOPs": ``macs`` is given for that
comparison (ResNet-50 at 224 px: 8.2 GFLOPs = 4.1 GMACs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class FlopsReport:
    input_shape: tuple[int, ...]
    flops: int
    params: int
    trainable_params: int
    by_module: dict[str, int] = field(default_factory=dict)  # top-level children

    @property
    def macs(self) -> int:
        return self.flops // 2

    def table(self) -> str:
        lines = [f"input {tuple(self.input_shape)}",
                 f"FLOPs  {self.flops / 1e9:10.3f} G   (multiply-accumulates {self.macs / 1e9:.3f} G)",
                 f"params {self.params / 1e6:10.3f} M   (trainable {self.trainable_params / 1e6:.3f} M)"]
        for name, flops in self.by_module.items():
            lines.append(f"  {name:<12s} {flops / 1e9:10.3f} GFLOPs")
        return "\n".join(lines)


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> FlopsReport:
    """Count one forward pass of ``model`` on zeros of ``input_shape``, in eval mode."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.zeros(input_shape, dtype=param.dtype, device=param.device)
    with FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as counter:
        model(x)
    model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    by_module = {}
    for name, child in model.named_children():
        # a container (ModuleList) is never called itself: its direct members' counts add up
        parts = [f"{root}.{name}.{sub}" for sub, _ in child.named_children()] \
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)) else [f"{root}.{name}"]
        by_module[name] = int(sum(sum(counts.get(part, {}).values()) for part in parts))
    return FlopsReport(tuple(input_shape), int(counter.get_total_flops()),
                       sum(p.numel() for p in model.parameters()),
                       sum(p.numel() for p in model.parameters() if p.requires_grad), by_module)


def _extra_formulas() -> dict:
    """Kernels torch's counter has no formula for: attention on the CPU (the fused
    ``scaled_dot_product_attention`` of Graphormer's encoder; its CUDA kernels are counted),
    with the formula torch uses for those: ``Q Kᵀ`` and ``softmax(…) V`` products."""
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_attention(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: cpu_attention} if op is not None else {}

