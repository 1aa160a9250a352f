"""EFT fits for OCHuman: train (2,495) and test (1,783 = the EFT-OCHuman-test set).

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import OPTIONS, Subset, define  # noqa: F401  (OPTIONS: the family's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["eft_ochuman"]
VERSION = "1"
SUBSETS = {
    "train": Subset("OCHuman_fit/OCHuman_train_ver10.json", "../ochuman/images", 2495),
    "test": Subset("OCHuman_fit/OCHuman_test_ver10.json", "../ochuman/images", 1783),
}
raw_files, iter_samples = define(SOURCE, SUBSETS)
