"""EFT fits for COCO 2014, COCO-Part (persons with all 12 limb joints; 28,344).

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import OPTIONS, Subset, define  # noqa: F401  (OPTIONS: the family's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["eft_coco_part"]
VERSION = "1"
SUBSETS = {
    "train": Subset("coco_2014_train_fit/COCO2014-Part-ver01.json", "../coco/train2014", 28344),
}
raw_files, iter_samples = define(SOURCE, SUBSETS)
