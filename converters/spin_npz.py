"""SPIN-style npz files (``imgname, center, scale, part, S, pose, shape, has_smpl, openpose``)
-> schema v1. The format, and every convention applied, is in :mod:`hmr.core.interop.spin_npz`.

Layout: ``ROOT`` is the folder holding the npz files (SPIN's ``data/dataset_extras``,
MMHuman3D's ``data/datasets/spin_data``, CLIFF's pseudo-GT folder ...); the split is the
file stem::

    hmr convert spin_npz --root spin/data/dataset_extras --split mpi_inf_3dhp_train --out stores/
    hmr convert spin_npz --root /data/coco --split train -o file=/dl/coco_2014_train.npz --out s.zarr

Options (``-o key=value``): :data:`OPTIONS`, listed by ``hmr convert spin_npz --help``;
``file`` and :data:`IMAGE_OPTIONS` are shared with ``humandata`` and ``spin_fits``. Stored
image paths are relative to ROOT (the store's image root), absolute if outside it.

Image sizes: read from the image headers (missing image = bad record); with
``--no-check-images`` and no ``image_hw`` the size is a placeholder (smallest size holding
box and keypoints) and ``extra_image_hw_known`` is False.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from converters.driver import BadRecord
from converters.images import attach_image_sizes
from converters.options import ConvertOptions, Option, get_option
from hmr.core.interop.common import HW_KNOWN_COLUMN, KEYPOINTS3D_MODES, parse_hw, placeholder_image_hw
from hmr.core.sources import SOURCES

SOURCE = SOURCES["spin_npz"]
VERSION = "1"

FILE_OPTION = Option("file", "", str, "the npz to read (absolute or relative to ROOT); default ROOT/<split>.npz")
IMAGE_OPTIONS = (
    Option("images", None, str, "folder the file's image names are relative to (relative to ROOT "
           "or absolute); default ROOT"),
    Option("image_hw", "", str, "H,W: the image size of every sample (e.g. 1000,1000 for H36M) "
           "instead of reading image headers"),
)
OPTIONS = (
    FILE_OPTION,
    Option("smpl_source", "", str, "origin of pose/shape (default ground-truth; mosh for a file "
           "whose name contains h36m)"),
    Option("keypoints3d", "auto", str, "what S is: per sample (auto), root_relative or camera; "
           "recorded in extra_keypoints3d_root_relative", choices=KEYPOINTS3D_MODES),
    *IMAGE_OPTIONS,
)


def npz_file(root: Path, split: str, options: ConvertOptions) -> Path:
    """The npz to read: ``-o file=...`` or ``ROOT/<split>.npz``."""
    name = get_option(options, (FILE_OPTION,), "file")
    path = Path(name) if name else Path(root) / f"{split}.npz"
    return path if path.is_absolute() else Path(root) / path


def raw_files(root: Path, split: str) -> list[Path]:
    """The default file, when it exists (a ``-o file=`` elsewhere is not listed)."""
    path = Path(root) / f"{split}.npz"
    return [path] if path.is_file() else []


def _stored_path(root: str, images: str, name: str) -> str:
    """``name`` (relative to ``images``) as a path relative to ``root``, or absolute when it
    lies outside; lexical only (no file-system calls per sample)."""
    full = os.path.normpath(os.path.join(images, name))
    return os.path.relpath(full, root) if full.startswith(root + os.sep) else full


def finish_samples(pairs: Iterable[tuple[dict[str, Any], str | None]], root: Path,
                   options: ConvertOptions, source: Path) -> Iterator[dict[str, Any] | BadRecord]:
    """Give each imported sample its stored image path and ``image_hw`` (camera, option,
    image header or placeholder), turning problems into :class:`BadRecord`s (``source``:
    the npz, row number as the record)."""
    root = Path(root)
    images = Path(get_option(options, IMAGE_OPTIONS, "images") or root)
    images = images if images.is_absolute() else root / images
    root_abs, images_abs = os.path.abspath(root), os.path.abspath(images)
    image_hw = get_option(options, IMAGE_OPTIONS, "image_hw")
    fixed_hw = parse_hw(image_hw) if image_hw else None

    def prepared() -> Iterator[tuple[dict[str, Any], str | None]]:
        for sample, problem in pairs:
            sample["image_path"] = _stored_path(root_abs, images_abs, sample["image_path"])
            yield sample, problem

    def path_of(item: tuple[dict[str, Any], str | None]) -> str | None:
        sample, problem = item
        if problem or "image_hw" in sample or fixed_hw or not options.check_images:
            return None
        return str(root / sample["image_path"])

    workers = options.workers if options.check_images else 1
    for (sample, problem), size in attach_image_sizes(prepared(), path_of, workers=workers):
        if problem is not None:
            yield BadRecord(str(source), int(sample["source_key"].rsplit(":", 1)[-1]), problem)
            continue
        if isinstance(size, str):
            yield BadRecord(str(root / sample["image_path"]), sample["source_key"], size)
            continue
        known = True
        if "image_hw" in sample:
            pass
        elif fixed_hw is not None:
            sample["image_hw"] = np.asarray(fixed_hw, dtype=np.int32)
        elif size is not None:
            sample["image_hw"] = np.asarray(size, dtype=np.int32)
        else:
            kps = sample.get("keypoints2d")
            kps = None if kps is None else np.asarray(kps)[None]  # (1, K, 3)
            sample["image_hw"] = placeholder_image_hw(np.asarray(sample["bbox_xywh"])[None], kps)[0]
            known = False
        sample[HW_KNOWN_COLUMN] = known
        yield sample


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict[str, Any] | BadRecord]:
    from hmr.core.interop.spin_npz import iter_spin_npz, spin_samples

    path = npz_file(root, split, options)
    pairs = spin_samples(iter_spin_npz(path),
                         smpl_source=get_option(options, OPTIONS, "smpl_source") or None,
                         keypoints3d=get_option(options, OPTIONS, "keypoints3d"))
    yield from finish_samples(pairs, Path(root), options, path)

