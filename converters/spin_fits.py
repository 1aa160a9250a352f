"""SPIN static fits: one SMPL fit per training sample, attached as ``smpl_source = "spin-fit"``.

SPIN (Kolotouros et al., ICCV 2019) starts training from SMPLify fits it ships in
``static_fits.tar.gz`` (``fetch_data.sh`` unpacks it into SPIN's ``data/`` folder). Each
``data/static_fits/<ds>_fits.npy`` is a float array (N, 82) = 72 axis-angle pose values
(root first, radians) + 10 betas, **row-aligned with SPIN's preprocessed npz of that
dataset** (``data/dataset_extras/*.npz``): row i is the fit of npz sample i. SPIN's
``FitsDict`` reads it exactly so (``params[:72]``, ``params[72:]``).

Raw layout (``ROOT`` = SPIN's ``data/`` folder)::

    ROOT/static_fits/{coco,lsp-orig,lspet,mpii,mpi-inf-3dhp,h36m}_fits.npy
        (MMHuman3D's mirror names lsp_fits.npy and mpi_inf_3dhp_fits.npy are accepted too)
    ROOT/dataset_extras/coco_2014_train.npz  lsp_dataset_original_train.npz
                        hr-lspet_train.npz   mpii_train.npz  mpi_inf_3dhp_train.npz
                        h36m_single_train_openpose.npz

Splits are SPIN's dataset keys (table :data:`SPIN_NPZ`). The rows the fits attach to
come from one of:

- ``-o store=PATH``: a schema store holding the same samples in SPIN's npz order (e.g.
  imported from that npz with the interop converter). Every field is copied; SMPL is
  replaced by the fit where the store has none.
- otherwise the SPIN npz itself (``-o npz=FILE`` to override), imported exactly as the
  ``spin_npz`` converter does (:mod:`hmr.core.interop.spin_npz`: 2D, box, ``S``, GT SMPL; its
  options ``images=DIR`` (what ``imgname`` is relative to, default ROOT) and
  ``image_hw=H,W`` apply). Image paths are stored relative to ROOT.

Where a row already has SMPL (H36M's MoSh parameters in SPIN's npz, or a store with
``has_smpl``) it is kept, as SPIN trains on ground truth where it exists; ``-o
override=1`` replaces it with the fit. A fit row with NaN/inf is a bad record. Row counts
must match exactly, else the files are not aligned and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.driver import BadRecord
from converters.options import ConvertOptions, Option, get_option
from converters.readers import require_file
from converters.spin_npz import IMAGE_OPTIONS, finish_samples
from hmr.core.errors import DatasetFormatError, SchemaError
from hmr.core.interop.safe_npz import open_npz
from hmr.core.schema.fields import SMPL_SOURCES
from hmr.core.sources import SOURCES

SOURCE = SOURCES["spin_fits"]
VERSION = "1"

SPIN_NPZ = {
    "coco": "coco_2014_train.npz",
    "lsp-orig": "lsp_dataset_original_train.npz",
    "lspet": "hr-lspet_train.npz",
    "mpii": "mpii_train.npz",
    "mpi-inf-3dhp": "mpi_inf_3dhp_train.npz",
    "h36m": "h36m_single_train_openpose.npz",
}
# SPIN's tarball names fits after its dataset keys; MMHuman3D's mirror uses underscores and
# "lsp" for lsp-orig. Both are accepted, SPIN's first.
FIT_NAMES = {split: (f"{split}_fits.npy", f"{split.replace('-', '_')}_fits.npy") for split in SPIN_NPZ}
FIT_NAMES["lsp-orig"] = ("lsp-orig_fits.npy", "lsp_fits.npy")
FIT_SOURCE = SMPL_SOURCES.index("spin-fit")
FIT_COLUMNS = 82

OPTIONS = (
    Option("fits", "", str, "the *_fits.npy (relative to ROOT or absolute); default "
           "static_fits/<split>_fits.npy (or MMHuman3D's name)"),
    Option("npz", None, str, "the SPIN npz the fits are row-aligned with (relative to ROOT or "
           "absolute); default dataset_extras/<SPIN's file for the split>"),
    Option("store", "", str, "a schema store holding the same samples in SPIN's npz order, "
           "instead of the npz"),
    Option("override", False, bool, "replace SMPL a row already has (ground truth) with the fit"),
    *IMAGE_OPTIONS,
)


def fits_path(root: Path, split: str, options: ConvertOptions) -> Path:
    if "fits" in options.extra:
        value = Path(get_option(options, OPTIONS, "fits"))
        return value if value.is_absolute() else Path(root) / value
    candidates = [Path(root) / "static_fits" / name for name in FIT_NAMES[split]]
    return next((p for p in candidates if p.is_file()), candidates[0])


def npz_path(root: Path, split: str, options: ConvertOptions) -> Path:
    value = Path(get_option(options, OPTIONS, "npz") or f"dataset_extras/{SPIN_NPZ[split]}")
    return value if value.is_absolute() else Path(root) / value


def raw_files(root: Path, split: str) -> list[Path]:
    root = Path(root)
    found = [p for p in (root / "static_fits" / n for n in FIT_NAMES[split]) if p.is_file()][:1]
    npz = root / "dataset_extras" / SPIN_NPZ[split]
    return found + ([npz] if npz.is_file() else [])


def load_fits(path: Path) -> np.ndarray:
    """(N, 82) float64 from a ``*_fits.npy`` (no pickles), memory-mapped."""
    require_file(path)
    try:
        fits = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetFormatError(f"unreadable or truncated .npy: {exc}", path=path) from None
    if fits.ndim != 2 or fits.shape[1] != FIT_COLUMNS:
        raise DatasetFormatError(f"fits have shape {fits.shape}, expected (N, {FIT_COLUMNS})", path=path)
    return fits


def fit_fields(row: np.ndarray) -> dict:
    """(82,) -> SMPL fields (ValueError if not finite)."""
    row = np.asarray(row, dtype=np.float64)
    if not np.isfinite(row).all():
        raise ValueError("fit row contains NaN or inf")
    return {"has_smpl": True, "smpl_source": FIT_SOURCE, "smpl_global_orient": row[:3],
            "smpl_body_pose": row[3:72], "smpl_betas": row[72:82], "gender": 0}


def _check_rows(n_rows: int, fits: np.ndarray, rows_from: Path, fits_file: Path) -> None:
    if n_rows != len(fits):
        raise DatasetFormatError(f"{len(fits)} fit rows but {n_rows} samples in {rows_from}: "
                                 "the files are not aligned (SPIN's fits follow its npz order)",
                                 path=fits_file)


# --------------------------------------------------------------------------- row sources
def rows_from_store(store_path: Path, root: Path) -> tuple[int, Iterator[dict]]:
    """(count, samples) of a schema store, image paths re-rooted to ``root``."""
    from hmr.core.schema import open_store

    store = open_store(store_path)
    if store.attrs.get("keypoint_convention") != "superset":
        raise SchemaError("store must use the superset keypoint convention", path=store_path)
    image_root = Path(store.attrs.get("image_root") or store_path.parent)

    def samples() -> Iterator[dict]:
        for _, cols in store.blocks():
            for k in range(len(cols["image_path"])):
                sample = {name: values[k] for name, values in cols.items()}
                sample["image_path"] = os.path.relpath(image_root / str(sample["image_path"]), root)
                yield sample

    return len(store), samples()


def rows_from_npz(path: Path, root: Path, options: ConvertOptions) -> tuple[int, Iterator[dict | BadRecord]]:
    """(count, samples) of a SPIN npz through the interop importer (one item per row, read
    in blocks). The count comes from the numeric ``center`` array alone (no pickle)."""
    from hmr.core.interop.spin_npz import iter_spin_npz, spin_samples

    with open_npz(path) as npz:  # a missing file or key, a corrupt zip: errors naming both
        shape, dtype = npz.header("center")
    if dtype.hasobject or not shape:
        raise DatasetFormatError(f"'center' is a {dtype} array of shape {shape}, not numeric (N, 2)",
                                 path=path, record="center")
    count = shape[0]
    return count, finish_samples(spin_samples(iter_spin_npz(path)), root, options, path)


def iter_samples(root: Path, split: str, options: ConvertOptions) -> Iterator[dict | BadRecord]:
    root = Path(root)
    fpath = fits_path(root, split, options)
    fits = load_fits(fpath)  # (N, 82)
    override = get_option(options, OPTIONS, "override")
    store = get_option(options, OPTIONS, "store")
    if store:
        src = Path(store)
        count, rows = rows_from_store(src, root)
    else:
        src = npz_path(root, split, options)
        count, rows = rows_from_npz(src, root, options)
    _check_rows(count, fits, src, fpath)
    for i, sample in enumerate(rows):
        if i >= len(fits):  # the row source yielded more than it declared
            _check_rows(i + 1, fits, src, fpath)
        if isinstance(sample, BadRecord):
            yield sample
            continue
        if sample.get("has_smpl") and not override:
            yield sample
            continue
        try:
            sample.update(fit_fields(fits[i]))
        except ValueError as exc:
            yield BadRecord(str(fpath), i, str(exc))
            continue
        sample["source_key"] = f"{sample.get('source_key', '')}|{fpath.name}[{i}]"
        yield sample
