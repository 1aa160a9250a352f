"""EFT fits for MPII (14,361).

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import OPTIONS, Subset, define  # noqa: F401  (OPTIONS: the family's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["eft_mpii"]
VERSION = "1"
SUBSETS = {
    "train": Subset("MPII_fit/MPII_ver01.json", "../mpii/images", 14361),
}
raw_files, iter_samples = define(SOURCE, SUBSETS)
