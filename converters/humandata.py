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

Options (``-o key=value``), besides ``file``, ``images``, ``image_hw``, ``keypoints3d`` as for
:mod:`converters.spin_npz`:

- ``smpl_source``: origin of the ``smpl`` parameters (default ``ground-truth``; e.g. ``eft``
  for ``eft_*.npz``, ``mosh`` for H36M, ``spin-fit`` for SPIN fits).
- ``limbs``: ``annotated`` (default) or ``smpl``: what the shared ``left_knee``... rows mean
  (``smpl`` for files whose keypoints were regressed from SMPL joints).
- ``import_transl``: 1 to store ``smpl['transl']`` as camera-frame ``smpl_transl``.

Image sizes come from ``cam_param`` (``H``, ``W``) where the file has it, else as for
:mod:`converters.spin_npz`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from converters.common import BadRecord, ConvertOptions, get_option
from converters.spin_npz import finish_samples, npz_file

NAME = "humandata"
VERSION = "1"
MANIFEST = "mmhuman3d_npz"
ALIASES = ("human_data", "mmhuman3d_npz")
SPLITS: tuple[str, ...] = ()  # any file stem
DESCRIPTION = "MMHuman3D HumanData npz (preprocessed_datasets/*.npz), restricted unpickling"


def raw_files(root: Path, split: str) -> list[Path]:
    """The default file, when it exists (a ``-o file=`` elsewhere is not listed)."""
    path = Path(root) / f"{split}.npz"
    return [path] if path.is_file() else []


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict[str, Any] | BadRecord]:
    from hmr.core.interop.humandata import humandata_samples, iter_humandata

    path = npz_file(root, split, options)
    blocks = iter_humandata(path, limbs=get_option(options, "limbs", "annotated"))
    pairs = humandata_samples(blocks, smpl_source=get_option(options, "smpl_source", "ground-truth"),
                              keypoints3d=get_option(options, "keypoints3d", "auto"),
                              import_transl=get_option(options, "import_transl", False))
    yield from finish_samples(pairs, Path(root), options, path)
