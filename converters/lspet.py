"""LSP-Extended (LSPET, 10,000 training images, 14 joints), original or high-resolution.

Raw layouts accepted under ``ROOT`` (detected from the files present)::

    lspet_dataset.zip (sam.johnson.io/research/lspet.html):
        ROOT/joints.mat              # variable 'joints', shape (14, 3, 10000) float64
        ROOT/images/im00001.jpg … im10000.jpg
    hr-lspet.zip (high-resolution images; the version SPIN, MMHuman3D and EFT use):
        ROOT/joints.mat              # same (14, 3, 10000) layout, in the HR pixels
        ROOT/im00001.png … im10000.png

Note the orientation: LSP's ``joints.mat`` is (3, 14, N), LSPET's is (14, 3, N)
(``joints[j, :, i]`` = x, y, flag). Here the flag is a *visibility* flag: 1 = visible,
0 = not visible. Mechanical-Turk annotators labelled only visible joints, so by default
a 0 flag becomes confidence 0 (the publisher's meaning). SPIN and MMHuman3D ignore the
flag and give every joint confidence 1; ``-o visibility=ignore`` reproduces that.

Joint order: LSP's 14 (convention ``"lsp"``). Split: ``train`` only (all 10,000).
Box: extent of the confidence > 0 joints, x1.2. Coordinates are used as written.
``image_hw`` comes from the image headers (read in parallel; images required).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.options import ConvertOptions, Option, get_option
from converters.lsp import leeds_samples, read_joints
from hmr.core.errors import DatasetFormatError
from hmr.core.sources import SOURCES

SOURCE = SOURCES["lspet"]
VERSION = "1"

OPTIONS = (
    Option("visibility", "use", str, "use: a 0 flag means not labelled (the publisher's meaning); "
           "ignore: every joint confidence 1 (SPIN, MMHuman3D)", choices=("use", "ignore")),
)


def raw_files(root: Path, split: str) -> list[Path]:
    path = Path(root) / "joints.mat"
    return [path] if path.is_file() else []


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    joints = read_joints(root / "joints.mat", "Jx3xN")  # (N, 14, 3)
    visibility = get_option(options, OPTIONS, "visibility")
    flags = joints[:, :, 2]
    if not np.isin(flags, (0.0, 1.0)).all():
        raise DatasetFormatError("visibility flags (joints[:, 2, :]) are not all 0/1",
                                 path=root / "joints.mat")
    hr = (root / "im00001.png").is_file() or not (root / "images").is_dir()
    rows = []
    for i, kps in enumerate(joints):
        kps = kps.copy()
        if visibility == "ignore":
            kps[:, 2] = 1.0
        else:
            kps[kps[:, 2] == 0, :2] = 0.0  # unlabelled: coordinates carry no meaning
        rel = f"im{i + 1:05d}.png" if hr else f"images/im{i + 1:05d}.jpg"
        rows.append((i, rel, kps))
    yield from leeds_samples(root, rows, "lsp", options, root / "joints.mat", {})
