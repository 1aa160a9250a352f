"""COCO 2014 person keypoints: same format and rules as :mod:`converters.coco` (2017).

Raw layout: ``ROOT/annotations/person_keypoints_{train,val}2014.json``,
``ROOT/{train,val}2014/COCO_{train,val}2014_000000xxxxxx.jpg``. The 2014 training set
is the one SPIN, HMR and EFT (COCO-All / COCO-Part / COCO-Val fits) are built on; use
``-o preset=spin`` (all 12 limb joints labelled) to reproduce SPIN's selection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from converters.common import BadRecord, ConvertOptions
from converters.coco import iter_coco
from converters.coco import raw_files as _raw_files

NAME = "coco2014"
VERSION = "1"
MANIFEST = "coco2014"
SPLITS = ("train", "val")
DESCRIPTION = "COCO 2014 person keypoints (official JSON, pycocotools)"
DEFAULT_ROOT = "coco"


def raw_files(root: Path, split: str) -> list[Path]:
    return _raw_files(root, split, 2014)


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    return iter_coco(root, split, options, 2014)
