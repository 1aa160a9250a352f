"""EFT fits for COCO 2014: COCO-All (train, 79,051) and the manually filtered COCO-Val (val,
10,510 = the EFT-COCO-val test set).

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import OPTIONS, Subset, define  # noqa: F401  (OPTIONS: the family's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["eft_coco"]
VERSION = "1"
SUBSETS = {
    "train": Subset("coco_2014_train_fit/COCO2014-All-ver01.json", "../coco/train2014", 79051),
    "val": Subset("coco_2014_train_fit/COCO2014-Val-ver10.json", "../coco/val2014", 10510),
}
raw_files, iter_samples = define(SOURCE, SUBSETS)
