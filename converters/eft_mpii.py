"""EFT fits for MPII (14,361).

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import Subset, define

NAME = "eft-mpii"
ALIASES = ("eft_mpii",)
VERSION = "1"
MANIFEST = "eft_mpii"
DESCRIPTION = "EFT SMPL fits, MPII"
DEFAULT_ROOT = "eft"
SUBSETS = {
    "train": Subset("MPII_fit/MPII_ver01.json", "../mpii/images", 14361),
}
SPLITS, raw_files, iter_samples = define(SUBSETS)
