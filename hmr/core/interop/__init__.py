"""Interop with the community's preprocessed npz files: MMHuman3D HumanData and SPIN npz.

Import (into schema v1, through the ``humandata`` and ``spin_npz`` converters) and export
(``hmr export STORE --to humandata|spin --out FILE.npz``), so the published preprocessed
files can be used directly and results compared. Object arrays inside these npz files are
pickles: they are read with the restricted unpickler (:mod:`hmr.core.interop.safe_npz`), never
with ``np.load(allow_pickle=True)``.

>>> from hmr.core.interop import export_spin_npz, export_humandata, open_npz
>>> export_spin_npz("stores/h36m_train.zarr", "h36m_train_spin.npz")
"""

from hmr.core.interop.humandata import export_humandata, humandata_samples, read_humandata
from hmr.core.interop.safe_npz import SafeNpz, open_npz
from hmr.core.interop.spin_npz import export_spin_npz, read_spin_npz, spin_samples

EXPORTERS = {"humandata": export_humandata, "spin": export_spin_npz}


def export_store(store: object, to: str, out_npz: str, *, overwrite: bool = True):
    """Export a schema store to ``to`` ('humandata' or 'spin'); returns the output path."""
    from hmr.core.errors import HmrError

    if to not in EXPORTERS:
        raise HmrError(f"unknown export format {to!r} (choose from {', '.join(EXPORTERS)})")
    return EXPORTERS[to](store, out_npz, overwrite=overwrite)


__all__ = ["EXPORTERS", "SafeNpz", "export_humandata", "export_spin_npz", "export_store",
           "humandata_samples", "open_npz", "read_humandata", "read_spin_npz", "spin_samples"]
