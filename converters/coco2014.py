"""COCO 2014 person keypoints: same format and rules as :mod:`converters.coco` (2017).

Raw layout: ``ROOT/annotations/person_keypoints_{train,val}2014.json``,
``ROOT/{train,val}2014/COCO_{train,val}2014_000000xxxxxx.jpg``. The 2014 training set
is the one SPIN, HMR and EFT (COCO-All / COCO-Part / COCO-Val fits) are built on; use
``-o preset=spin`` (all 12 limb joints labelled) to reproduce SPIN's selection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from converters.coco import OPTIONS, iter_coco  # noqa: F401  (OPTIONS: same options as 2017)
from converters.coco import raw_files as _raw_files
from converters.driver import BadRecord
from converters.options import ConvertOptions
from hmr.core.sources import SOURCES

SOURCE = SOURCES["coco2014"]
VERSION = "1"


def raw_files(root: Path, split: str) -> list[Path]:
    return _raw_files(root, split, 2014)


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    return iter_coco(root, split, options, 2014)
