"""EFT fits for LSP-Extended (HR-LSPET images): ver1.0 train (2,946) and test (2,433 = the
EFT-LSPET-test set). The older unfiltered ``LSPet_ver01.json`` (the one MMHuman3D converts)
goes through ``-o fits=LSPet_fit/LSPet_ver01.json``.

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import OPTIONS, Subset, define  # noqa: F401  (OPTIONS: the family's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["eft_lspet"]
VERSION = "1"
SUBSETS = {
    "train": Subset("LSPet_fit/LSPet_train_ver10.json", "../lspet", 2946),
    "test": Subset("LSPet_fit/LSPet_test_ver10.json", "../lspet", 2433),
}
raw_files, iter_samples = define(SOURCE, SUBSETS)
