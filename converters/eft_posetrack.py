"""EFT fits for PoseTrack (28,856). ``imageName`` is joined to ../posetrack as written,
falling back to its basename.

Reader, layout and conventions: :mod:`converters.eft`. Raw files (ROOT = ``data/datasets/eft``)
and images: the table :data:`SUBSETS` below (paths relative to ROOT).
"""

from __future__ import annotations

from converters.eft import OPTIONS, Subset, define  # noqa: F401  (OPTIONS: the family's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["eft_posetrack"]
VERSION = "1"
SUBSETS = {
    "train": Subset("PoseTrack_fit/PoseTrack_ver01.json", "../posetrack", 28856),
}
raw_files, iter_samples = define(SOURCE, SUBSETS)
