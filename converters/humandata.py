"""MMHuman3D HumanData npz files -> schema v1. The format, and every convention applied, is
in :mod:`hmr.core.interop.humandata`; the 190-joint layout in :mod:`hmr.core.keypoints.human_data`.

Layout: ``ROOT`` is the folder of HumanData files (MMHuman3D's
``data/preprocessed_datasets``); the split is the file stem::

    hmr convert humandata --root mmhuman3d/data/preprocessed_datasets --split pw3d_test \\
        -o images=mmhuman3d/data/datasets/pw3d --out stores/
    hmr convert humandata --root /data/h36m --split train -o file=/dl/h36m_train.npz --out h36m.zarr

The dict-valued keys (``smpl``, ``meta``, ``misc``, ``cam_param``) are pickles inside the
npz: they go through the restricted unpickler, and a file whose pickles name anything but
numpy arrays and plain containers is refused (``UnsafePickleError``, file and key).

Options (``-o key=value``): :data:`OPTIONS`, listed by ``hmr convert humandata --help``
(``file``, ``images``, ``image_hw``, ``keypoints3d`` as for :mod:`converters.spin_npz`).

Image sizes come from ``cam_param`` (``H``, ``W``) where the file has it, else as for
:mod:`converters.spin_npz`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from converters.driver import BadRecord
from converters.options import ConvertOptions, Option, get_option
from converters.spin_npz import FILE_OPTION, IMAGE_OPTIONS, finish_samples, npz_file
from hmr.core.interop.common import KEYPOINTS3D_MODES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["humandata"]
VERSION = "1"

OPTIONS = (
    FILE_OPTION,
    Option("smpl_source", "ground-truth", str, "origin of the smpl parameters (e.g. eft for "
           "eft_*.npz, mosh for H36M, spin-fit for SPIN fits)"),
    Option("limbs", "annotated", str, "what the shared left_knee... rows mean: annotated joints, "
           "or smpl (keypoints regressed from SMPL joints)", choices=("annotated", "smpl")),
    Option("import_transl", False, bool, "store smpl['transl'] as camera-frame smpl_transl"),
    Option("keypoints3d", "auto", str, "what keypoints3d is: per sample (auto), root_relative or "
           "camera", choices=KEYPOINTS3D_MODES),
    *IMAGE_OPTIONS,
)


def raw_files(root: Path, split: str) -> list[Path]:
    """The default file, when it exists (a ``-o file=`` elsewhere is not listed)."""
    path = Path(root) / f"{split}.npz"
    return [path] if path.is_file() else []


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict[str, Any] | BadRecord]:
    from hmr.core.interop.humandata import humandata_samples, iter_humandata

    path = npz_file(root, split, options)
    blocks = iter_humandata(path, limbs=get_option(options, OPTIONS, "limbs"))
    pairs = humandata_samples(blocks, smpl_source=get_option(options, OPTIONS, "smpl_source"),
                              keypoints3d=get_option(options, OPTIONS, "keypoints3d"),
                              import_transl=get_option(options, OPTIONS, "import_transl"))
    yield from finish_samples(pairs, Path(root), options, path)
