"""hmr flops: FLOPs and parameters of a config's network (torch's own FLOP counter)."""

from __future__ import annotations

import argparse

COMMAND = "flops"
HELP = "FLOPs (and multiply-accumulates) and parameters of a config's network, by part"
EXAMPLE = "hmr flops hmr_l1 --shape 1,3,224,224"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="named config or .toml file")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. model.backbone=hrnet_w32")
    p.add_argument("--shape", help="input shape B,C,H,W (default 1,3,S,S with S = model.img_size)")


def run(args: argparse.Namespace) -> int:
    from hmr.core.errors import ConfigError
    from hmr.models import create_model
    from hmr.models.flops import count_flops
    from hmr.models.regressor import MEAN_PARAM_SHAPES, MeanParams
    from hmr.training.config import load_config

    config = load_config(args.config, args.overrides)
    size = config.model.img_size
    try:
        shape = tuple(int(v) for v in args.shape.split(",")) if args.shape else (1, 3, size, size)
    except ValueError:
        raise ConfigError(f"--shape {args.shape!r}: expected four integers like 1,3,224,224") from None
    if len(shape) != 4:
        raise ConfigError(f"--shape {args.shape!r}: expected B,C,H,W")
    import torch

    # The count needs no weights: neither mean parameters nor the backbone file are read.
    zeros = MeanParams(*(torch.zeros(s) for s in MEAN_PARAM_SHAPES.values()))
    model = create_model(config.model, mean=zeros, load_backbone_checkpoint=False)
    print(f"{config.name}: backbone {config.model.backbone}")
    print(count_flops(model, shape).table())
    return 0
