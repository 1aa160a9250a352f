"""hmr shard: schema store(s) -> WebDataset shards of pre-cropped people."""

from __future__ import annotations

import argparse

COMMAND = "shard"
HELP = "pack schema stores into WebDataset tar shards (person crops + labels in crop pixels)"
EXAMPLE = "hmr shard stores/h36m_train.zarr stores/eft_coco-all.zarr --out shards/ --workers 8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stores", nargs="+", help="schema-v1 stores (*.zarr / *.npz)")
    p.add_argument("--out", required=True, help="folder; each store goes to OUT/<dataset>-<split>/")
    p.add_argument("--name", default=None, help="shard-set name (one store only; default <dataset>-<split>)")
    p.add_argument("--image-root", default=None, help="override the store's image_root")
    p.add_argument("--crop-size", type=int, default=256, help="stored crop side in pixels (default 256)")
    p.add_argument("--context", type=float, default=1.25,
                   help="crop covers CONTEXT x the person box, room for augmentation (default 1.25)")
    p.add_argument("--bbox-scale", type=float, default=1.2, help="person box = max(w, h) x this (default 1.2)")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--samples-per-shard", type=int, default=None,
                   help="samples per shard (default: as many as fit in --max-shard-bytes)")
    p.add_argument("--max-shard-bytes", type=float, default=1e9, help="target shard size (default 1e9)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--part", default=None, metavar="I/N",
                   help="write only shards k with k %% N == I (needs --samples-per-shard); then run again "
                        "without --part to write index.json (docs/scale-out.md)")


def run(args: argparse.Namespace) -> int:
    from hmr.core.schema.merge import parse_part
    from loaders.shard import ShardConfig, load_shard_set, shard_stores

    part = parse_part(args.part) if args.part else None

    cfg = ShardConfig(crop_size=args.crop_size, bbox_scale=args.bbox_scale, context=args.context,
                      jpeg_quality=args.jpeg_quality, samples_per_shard=args.samples_per_shard,
                      max_shard_bytes=int(args.max_shard_bytes), image_root=args.image_root,
                      name=args.name, workers=args.workers, strict=args.strict, part=part)
    for store, set_dir in zip(args.stores, shard_stores(args.stores, args.out, cfg, progress=not args.quiet)):
        if part is not None:
            print(f"{store}: part {args.part} -> {set_dir}")
            continue
        sset = load_shard_set(set_dir)
        skipped = len(sset.index["skipped"])
        line = f"{store}: {sset.num_samples} samples in {len(sset.shards)} shards -> {sset.root}"
        if skipped:
            line += f" ({skipped} skipped, listed in {sset.root / 'index.json'})"
        print(line)
    return 0
