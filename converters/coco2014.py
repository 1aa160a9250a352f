"""COCO 2014 person keypoints: same format and rules as :mod:`converters.coco` (2017), read
by :mod:`converters.coco_format`.

Raw layout: ``ROOT/annotations/person_keypoints_{train,val}2014.json``,
``ROOT/{train,val}2014/COCO_{train,val}2014_000000xxxxxx.jpg``. The 2014 training set
is the one SPIN, HMR and EFT (COCO-All / COCO-Part / COCO-Val fits) are built on; use
``-o preset=spin`` (all 12 limb joints labelled) to reproduce SPIN's selection.
"""

from __future__ import annotations

from converters.coco_format import OPTIONS, CocoFormat, define  # noqa: F401  (OPTIONS: the reader's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["coco2014"]
VERSION = "1"
FORMAT = CocoFormat(annotations="annotations/person_keypoints_{split}2014.json",
                    images="{split}2014", convention="coco", visibility=(0, 1, 2))
raw_files, iter_samples = define(SOURCE, FORMAT)
