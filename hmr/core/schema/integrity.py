"""What a store reader checks before trusting a zarr store's files (see docs/reliability.md).

- :func:`check_codecs`: every array names only the codecs our writer uses, read from the
  metadata files themselves before zarr builds a codec or decodes a chunk. numcodecs'
  ``pickle`` codec runs arbitrary code on decode when ``NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE``
  is set in the environment (numcodecs ``pickles.py``); we refuse it whatever the environment.
- :func:`missing_chunks`: zarr reads a chunk file that is absent back as the fill value,
  silently (and by default does not even write chunks that hold only the fill value). Our
  writer writes every chunk and records :data:`EVERY_CHUNK` in the store attributes, so for
  such a store an absent chunk file means a deleted one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hmr.core.errors import SchemaError

EVERY_CHUNK = "every_chunk_written"
# The codecs our writer puts in a zarr store's metadata; anything else is refused on open.
ALLOWED_CODECS = frozenset({"blosc", "vlen-utf8", "bytes", "zstd", "vlen-bytes"})


def check_codecs(path: Path) -> None:
    """Refuse a zarr store whose arrays name a codec our writer does not use (numcodecs'
    ``pickle`` codec would run code on decode): read from the metadata files themselves,
    before zarr instantiates anything."""
    path = Path(path)
    for meta in sorted([*path.glob("*/.zarray"), *path.glob("*/zarr.json")]):
        try:
            doc = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaError(f"unreadable array metadata ({type(exc).__name__}: {exc})",
                              field=meta.parent.name, path=path) from None
        if not isinstance(doc, dict):
            raise SchemaError("array metadata is not a JSON object", field=meta.parent.name, path=path)
        if meta.name == ".zarray":
            codecs = [doc.get("compressor")] + list(doc.get("filters") or [])
            names = [c.get("id") if isinstance(c, dict) else c for c in codecs if c is not None]
        else:
            names = [c.get("name") if isinstance(c, dict) else c for c in doc.get("codecs") or []]
        refused = [str(n) for n in names if n not in ALLOWED_CODECS]
        if refused:
            raise SchemaError(f"array uses codec(s) {refused}, which hmrkit stores never use "
                              f"(allowed: {sorted(ALLOWED_CODECS)}); refusing to decode it",
                              field=meta.parent.name, path=path)


def missing_chunks(array_dir: Path, shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[str]:
    """Chunk files (zarr v2 keys, "." separated) that an array of ``shape`` must have but
    ``array_dir`` lacks."""
    if not shape or any(s == 0 for s in shape):
        return []
    grid = [-(-s // c) for s, c in zip(shape, chunks)]
    present = {p.name for p in array_dir.iterdir()} if array_dir.is_dir() else set()
    expected = [".".join(map(str, idx)) for idx in np.ndindex(*grid)]
    return [k for k in expected if k not in present]
