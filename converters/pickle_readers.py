"""Restricted readers for two kinds of pickle the datasets ship, without running their code.

- :func:`read_dataframe`: a pandas ``DataFrame`` pickle (AGORA's camera dataframes) read
  without importing pandas: the pickle's references to pandas' classes (``DataFrame``,
  ``BlockManager``, ``_unpickle_block``, ``_new_Index`` and the index classes) are mapped to
  inert stand-ins, and the frame is rebuilt as ``{column: [value per row]}``. Mesh-sized float
  arrays ((V, 3), V >= 2,000: AGORA's ``gt_verts``) are dropped while reading.
- :func:`read_torch_pickle`: a plain pickle holding torch tensors (AGORA's SMPL/SMPL-X fits),
  each tensor rebuilt through torch's own weights-only path and returned as numpy.

Everything else a pickle names is refused by :class:`hmr.core.utils.safe_pickle.RestrictedUnpickler`
(UnsafePickleError); a damaged file is a DatasetFormatError naming it.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from converters.readers import require_file
from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.utils.safe_pickle import RestrictedUnpickler

__all__ = ["MESH_MIN_ROWS", "read_dataframe", "read_torch_pickle"]


class _IndexClass:
    """Stands in for a pandas index class (only ever passed to ``_new_Index``)."""

    def __init__(self, name: str):
        self.name = name


class _Frame:
    """Stand-in for ``pandas.DataFrame``: keeps the pickled state."""

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Manager:
    """Stand-in for pandas' ``BlockManager``: pandas >= 2 reduces it to
    ``BlockManager(blocks, axes)``; pandas 1.x pickles ``__getstate__``'s tuple whose last
    item holds ``{"0.14.1": {"axes": ..., "blocks": [{"values", "mgr_locs"}]}}``."""

    def __init__(self, blocks: Any = (), axes: Any = (), *_: Any):
        self.blocks = [tuple(b) for b in blocks]
        self.axes = list(axes)

    def __setstate__(self, state: Any) -> None:
        try:
            modern = state[3]["0.14.1"]
            self.axes = list(modern["axes"])
            self.blocks = [(b["values"], b["mgr_locs"]) for b in modern["blocks"]]
        except (TypeError, KeyError, IndexError):
            raise UnsafePickleError("unknown pandas BlockManager state (pre-0.14.1 pickle?)") from None


def _unpickle_block(values: Any, placement: Any, ndim: Any = 2) -> tuple[Any, Any]:
    return values, placement


def _new_index(cls: Any, data: Any) -> list:
    if not isinstance(cls, _IndexClass) or not isinstance(data, dict):
        raise UnsafePickleError("pandas index pickled with an unexpected class or state")
    if cls.name == "RangeIndex":
        return list(range(data.get("start", 0), data["stop"], data.get("step", 1)))
    return list(data["data"])


#: meshes in the dataframes (``gt_verts``: 6,890 SMPL or 10,475 SMPL-X vertices per person)
#: are dropped while unpickling; nothing else has this many 3-D rows
MESH_MIN_ROWS = 2000


def _frombuffer_without_meshes(buf: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    """numpy's protocol-5 array rebuild, except that float (V, 3) arrays with V >= 2,000 (a
    mesh) become an empty (0, 3) array: a train dataframe holds gigabytes of ``gt_verts``
    the converter never reads, and they are freed as soon as they are read."""
    shape = tuple(shape)
    if len(shape) == 2 and shape[1] == 3 and shape[0] >= MESH_MIN_ROWS and np.dtype(dtype).kind == "f":
        return np.zeros((0, 3), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


_PANDAS = {
    **{(m, "_frombuffer"): _frombuffer_without_meshes for m in ("numpy.core.numeric", "numpy._core.numeric")},
    **{(m, "DataFrame"): _Frame for m in ("pandas", "pandas.core.frame")},
    **{(m, "BlockManager"): _Manager for m in ("pandas.core.internals.managers", "pandas.core.internals")},
    ("pandas._libs.internals", "_unpickle_block"): _unpickle_block,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    **{(m, n): _IndexClass(n) for n, mods in (
        ("Index", ("pandas", "pandas.core.indexes.base")),
        ("RangeIndex", ("pandas", "pandas.core.indexes.range")),
        ("Int64Index", ("pandas", "pandas.core.indexes.numeric")),
        ("UInt64Index", ("pandas", "pandas.core.indexes.numeric")),
        ("Float64Index", ("pandas", "pandas.core.indexes.numeric"))) for m in mods},
}


def _load_storage(data: bytes) -> Any:
    """A pickled torch storage: a nested legacy ``torch.save`` blob, read weights-only onto
    the CPU (the fits may have been saved from a GPU)."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _torch_globals() -> dict[tuple[str, str], Any]:
    import torch
    import torch._utils

    def rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
        if func not in (torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
                        torch._utils._rebuild_parameter_with_state) or \
                new_type not in (torch.Tensor, torch.nn.Parameter):
            raise UnsafePickleError(f"refusing torch rebuild {func!r} of {new_type!r}")
        return func(*args)

    return {
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
        ("torch._utils", "_rebuild_from_type_v2"): rebuild_from_type,
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("torch", "Tensor"): torch.Tensor, ("torch._tensor", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch", "device"): torch.device,
    }


_NUMPY2 = int(np.__version__.split(".")[0]) >= 2


class _ExtendedUnpickler(RestrictedUnpickler):
    def __init__(self, file: Any, extra: dict[tuple[str, str], Any], **kw: Any):
        super().__init__(file, **kw)
        self._extra = extra

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._extra:
            return self._extra[(module, name)]
        if module.startswith("numpy.core.") and _NUMPY2:  # numpy 1.x pickles: numpy 2 warns on the old name
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def _restricted_load(path: Path, extra: dict[tuple[str, str], Any]) -> Any:
    require_file(path)
    try:
        with open(path, "rb") as fh:  # streamed: the dataframes run to gigabytes
            return _ExtendedUnpickler(fh, extra, path=path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, RuntimeError) as exc:
        raise DatasetFormatError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path) from None


def read_torch_pickle(path: Path) -> Any:
    """A plain pickle that may hold torch tensors (AGORA's SMPL fits, SMPLify-XMC results),
    tensors turned into float64 numpy arrays."""
    return _tensors_to_numpy(_restricted_load(path, _torch_globals()))


def _tensors_to_numpy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _tensors_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_to_numpy(v) for v in obj)
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        return obj.detach().cpu().numpy()
    return obj


def read_dataframe(path: Path) -> dict[str, list]:
    """A pandas DataFrame pickle -> ``{column: [value per row]}`` (pandas not needed)."""
    frame = _restricted_load(path, _PANDAS)
    state = getattr(frame, "state", None)
    manager = state.get("_mgr", state.get("_data")) if isinstance(state, dict) else None
    if not isinstance(frame, _Frame) or not isinstance(manager, _Manager) or len(manager.axes) != 2:
        raise DatasetFormatError("not a pandas DataFrame pickle", path=path)
    names, rows = manager.axes
    columns: dict[str, list] = {}
    for values, placement in manager.blocks:
        values = np.asarray(values)
        where = range(len(names))[placement] if isinstance(placement, slice) else np.asarray(placement).tolist()
        if values.ndim != 2 or values.shape != (len(where), len(rows)):
            raise DatasetFormatError(f"DataFrame block of shape {values.shape} does not fit "
                                     f"{len(where)} columns x {len(rows)} rows", path=path)
        for i, col in zip(where, values):
            columns[str(names[i])] = list(col)
    return columns
