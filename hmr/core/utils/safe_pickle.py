"""Restricted unpickling for dataset and body-model pickles.

Dataset pickles (3DPW sequence files, UP-3D fits, H36M MoSh, camera dicts, SMPL models)
are data: dicts, lists and numpy arrays. A pickle can name any importable callable, so we
never call ``pickle.load`` on them. :func:`load` resolves only an allow-list of globals;
anything else raises :class:`~hmr.core.errors.UnsafePickleError` naming the file and the global.

The official SMPL ``.pkl`` files hold ``chumpy`` objects (``chumpy.ch.Ch`` and friends).
We never install chumpy: :class:`_ChumpyArray` stands in for those classes and keeps the
array that chumpy pickles in its ``__setstate__`` state (key ``'x'``), which
:func:`to_numpy_tree` then unwraps.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hmr.core.errors import UnsafePickleError

# (module, name) pairs that may be resolved. Everything here only builds data.
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "bool_"), ("numpy", "float64"), ("numpy", "float32"), ("numpy", "int64"),
    ("numpy", "int32"), ("numpy", "uint8"), ("numpy", "uint32"), ("numpy", "int16"),
}
_BUILTIN_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("builtins", "slice"), ("builtins", "range"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"),  # python 2 pickles
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("builtins", "object"), ("__builtin__", "object"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("_codecs", "encode"),  # python 2 byte strings written with protocol 2
}
_SCIPY_SPARSE = {
    ("scipy.sparse.csc", "csc_matrix"), ("scipy.sparse._csc", "csc_matrix"),
    ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
    ("scipy.sparse.coo", "coo_matrix"), ("scipy.sparse._coo", "coo_matrix"),
    ("scipy.sparse._csc", "csc_array"), ("scipy.sparse._csr", "csr_array"),
}
_CHUMPY_MODULES = ("chumpy", "chumpy.ch", "chumpy.ch_ops", "chumpy.reordering", "chumpy.utils")


class _ChumpyArray:
    """Stand-in for chumpy classes: keeps the pickled state, holds no behaviour."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def to_numpy(self) -> np.ndarray:
        state = self.state
        if isinstance(state, dict) and "x" in state:
            return np.asarray(state["x"])
        raise UnsafePickleError("chumpy object without an array payload ('x')")


def _reject(module: str, name: str, path: object | None) -> None:
    raise UnsafePickleError(f"refusing to unpickle global {module}.{name} (not on the allow-list)",
                            path=path)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy arrays, plain containers and (optionally)
    scipy sparse matrices and chumpy stand-ins."""

    def __init__(self, file: BinaryIO, *, path: object | None = None, allow_scipy_sparse: bool = False,
                 allow_chumpy: bool = False, encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self._path = path
        self._allow_sparse = allow_scipy_sparse
        self._allow_chumpy = allow_chumpy

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _NUMPY_GLOBALS or key in _BUILTIN_GLOBALS:
            return super().find_class(module, name)
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and name == "dtype":
            return np.dtype
        if self._allow_sparse and key in _SCIPY_SPARSE:
            return super().find_class(module, name)
        if self._allow_chumpy and module in _CHUMPY_MODULES:
            return _ChumpyArray
        _reject(module, name, self._path)


def load(source: str | Path | bytes | BinaryIO, *, allow_scipy_sparse: bool = False,
         allow_chumpy: bool = False, encoding: str = "latin1") -> Any:
    """Unpickle ``source`` (a path, bytes or a binary file) with the allow-list above.

    ``encoding='latin1'`` reads python-2 pickles (3DPW, SMPL, MoSh) with numpy arrays intact.
    """
    path: object | None = None
    if isinstance(source, (str, Path)):
        path = source
        with open(source, "rb") as fh:
            data = fh.read()
        stream: BinaryIO = io.BytesIO(data)
    elif isinstance(source, (bytes, bytearray)):
        stream = io.BytesIO(source)
    else:
        stream = source
        path = getattr(source, "name", None)
    try:
        return RestrictedUnpickler(stream, path=path, allow_scipy_sparse=allow_scipy_sparse,
                                   allow_chumpy=allow_chumpy, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise UnsafePickleError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path) from exc


def to_numpy_tree(obj: Any) -> Any:
    """Replace chumpy stand-ins by numpy arrays, recursively through dicts, lists, tuples."""
    if isinstance(obj, _ChumpyArray):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return {k: to_numpy_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_numpy_tree(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_numpy_tree(v) for v in obj)
    return obj
