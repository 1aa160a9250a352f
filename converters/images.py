"""Image sizes from image headers, for converters whose annotations lack them.

One mechanism, :class:`ImageProber`: header reads (no decode) in this process, timed; a
process pool starts, once, only when they turn out slow (network or cold disks). On a local
disk a header read takes ~0.2 ms, less than a pool's start-up and messaging would save.
:func:`attach_image_sizes` pairs a stream of records with their images' sizes through it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from converters.driver import BadRecord
from converters.readers import image_size_hw
from hmr.core.errors import DatasetFormatError

POOL_MIN_SECONDS_PER_IMAGE = 5e-4  # header reads faster than this stay in-process

Size = tuple[int, int] | str  # (height, width), or why the image cannot be read


def _probe_image(path: str) -> Size:
    """(height, width) of one image, or the reason it cannot be read (picklable for pools)."""
    try:
        return image_size_hw(Path(path))
    except DatasetFormatError as exc:
        return exc.message


class ImageProber:
    """Ordered header probes for one conversion::

        with ImageProber(workers) as probe:
            for size in probe(paths): ...   # (height, width) or an error message, per path

    Each call reads in this process and is timed until a pool is warranted: when a call's
    reads cost more than :data:`POOL_MIN_SECONDS_PER_IMAGE` each, the *next* call starts a
    pool of ``workers`` processes (None: all cores; 1: never) and every later call uses it,
    so a converter walking thousands of sequences pays one pool start-up, and a conversion
    whose probes all fit in one call pays none.
    """

    def __init__(self, workers: int | None = None):
        self.workers = os.cpu_count() if workers is None else workers
        self._pool: Any = None
        self._slow = False

    def __enter__(self) -> ImageProber:
        return self

    def __call__(self, paths: Iterable[Any]) -> Iterator[Size]:
        names = [str(p) for p in paths]
        if self._slow and self._pool is None:
            import multiprocessing as mp

            self._pool = mp.get_context("spawn").Pool(self.workers)
        if self._pool is not None:
            chunksize = max(1, min(64, len(names) // (4 * self.workers)))
            return self._pool.imap(_probe_image, names, chunksize=chunksize)
        start = time.perf_counter()
        sizes = list(map(_probe_image, names))
        per_image = (time.perf_counter() - start) / max(len(names), 1)
        self._slow = bool(names) and self.workers > 1 and per_image > POOL_MIN_SECONDS_PER_IMAGE
        return iter(sizes)

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def attach_image_sizes(items: Iterable[Any], path_of: Callable[[Any], str | None], *,
                       workers: int | None = None, chunk: int = 512
                       ) -> Iterator[tuple[Any, Size | None]]:
    """Pair each item with its image's (height, width), or an error message, or None when
    ``path_of(item)`` is None (item needs no image / is a BadRecord).

    ``chunk`` items at a time, so memory does not grow with the number of items and an
    image shared by several persons is read once per chunk; probes go through one
    :class:`ImageProber` of ``workers``.
    """
    with ImageProber(workers) as probe:
        it = iter(items)
        while True:
            block = [x for _, x in zip(range(chunk), it)]
            if not block:
                return
            paths = [path_of(x) for x in block]
            unique = sorted({p for p in paths if p is not None})
            found = dict(zip(unique, probe(unique)))
            for x, p in zip(block, paths):
                yield x, (found[p] if p is not None else None)

def with_image_sizes(samples: Iterable[Any], root: Path | str, *, workers: int | None = None
                     ) -> Iterator[Any]:
    """Schema samples (and BadRecords, passed through) with ``image_hw`` from each image's
    header, read under ``root``; a sample whose image cannot be read becomes a BadRecord
    naming the image and the sample's ``source_key``. For sources whose annotations carry no
    image sizes (so their images are required)."""
    root = Path(root)
    pairs = attach_image_sizes(samples, lambda s: None if isinstance(s, BadRecord)
                               else str(root / s["image_path"]), workers=workers)
    for sample, size in pairs:
        if isinstance(sample, BadRecord):
            yield sample
        elif isinstance(size, str):
            yield BadRecord(str(root / sample["image_path"]), sample["source_key"], size)
        else:
            sample["image_hw"] = np.asarray(size, dtype=np.int32)
            yield sample

