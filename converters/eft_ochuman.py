"""EFT fits for OCHuman: train (2,495) and test (1,783 = the EFT-OCHuman-test set).

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import Subset, define

NAME = "eft-ochuman"
ALIASES = ("eft_ochuman",)
VERSION = "1"
MANIFEST = "eft_ochuman"
DESCRIPTION = "EFT SMPL fits, OCHuman (train; test = EFT-OCHuman-test)"
DEFAULT_ROOT = "eft"
SUBSETS = {
    "train": Subset("OCHuman_fit/OCHuman_train_ver10.json", "../ochuman/images", 2495),
    "test": Subset("OCHuman_fit/OCHuman_test_ver10.json", "../ochuman/images", 1783),
}
SPLITS, raw_files, iter_samples = define(SUBSETS)
