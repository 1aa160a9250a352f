"""In-memory cache of decoded samples, for small machines that read the same shards every epoch.

Reading a shard sample costs tar parsing, JPEG decoding and, without augmentation, the crop
and label arithmetic: about 1 ms per sample on one core, a quarter of the demo's training step
when the loading runs in the training process (``num_workers = 0``, the fastest choice on 2
cores). :class:`SampleCache` keeps what the stream computed for each ``(shard, key)`` up to a
memory budget:

- without augmentation (``StreamConfig.train = False``) the finished per-sample arrays
  (they are the same every epoch);
- with augmentation the decoded :class:`~loaders.sample.CropSample`, before any random change
  (augmentations return new samples and never write into it).

In device-decode mode (``StreamConfig.decode_on = "device"``) those items hold the crop's JPEG
bytes instead of its pixels (counted by :func:`item_bytes` like any array).

A shard whose samples are all cached is not opened again: the stream yields small markers
in the shard's own key order, so shuffling, mixing, the per-sample random generators and
therefore the batches are exactly those of an uncached stream (``tests/loaders/test_stream.py``).
The cache lives in the process that reads: with ``num_workers = 0`` it spans epochs; DataLoader
workers are restarted every epoch and would start empty each time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

__all__ = ["SampleCache", "CACHED", "MISSING"]

CACHED = "__cached__"  # marker key: the raw sample's item is in the cache
MISSING = object()  # SampleCache.lookup: no item for this sample


def item_bytes(item: object) -> int:
    """Approximate memory of a cached item: the numpy arrays it holds (plus 1 KiB of overhead)."""
    if dataclasses.is_dataclass(item):  # fields read in place (asdict would copy every array)
        values = [getattr(item, f.name) for f in dataclasses.fields(item)]
    else:
        values = item.values() if isinstance(item, dict) else ()
    return 1024 + sum(v.nbytes for v in values if isinstance(v, np.ndarray))


class SampleCache:
    """``(shard url, key) → item`` up to ``max_bytes``; see the module docstring."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.items: dict[tuple[str, str], object] = {}
        self.order: dict[str, list[str]] = {}  # keys of each shard in tar order, once fully read
        self.cached: dict[str, int] = {}  # items held per shard
        self.complete: set[str] = set()  # shards whose every key has an item
        self.hits = 0  # samples served from memory

    def read(self, url: str, expected: int | None, read_shard) -> Iterator[dict]:
        """The shard's raw samples: markers when it is fully cached, else ``read_shard(url)``
        (whose key order is recorded when it yields the ``expected`` count)."""
        if url in self.complete:
            self.hits += len(self.order[url])
            for key in self.order[url]:
                yield {"__key__": key, "__url__": url, CACHED: True}
            return
        keys = []
        for sample in read_shard(url):
            keys.append(sample["__key__"])
            yield sample
        if expected is None or len(keys) == expected:
            self.order[url] = keys
            self._check_complete(url)

    def get(self, raw: dict):
        """The item of a marker yielded by :meth:`read`."""
        return self.items[(raw["__url__"], raw["__key__"])]

    def lookup(self, raw: dict):
        """The item of a sample read from disk again, or :data:`MISSING`. A shard is read again
        when it is not complete: e.g. a resampled epoch ended while its last samples waited in
        the shuffle buffer (dropped, so never cached); its other samples need no decoding."""
        item = self.items.get((raw["__url__"], raw["__key__"]), MISSING)
        self.hits += item is not MISSING
        return item

    def put(self, raw: dict, item: object) -> None:
        """Keep ``item`` (None for a corrupt sample) for this raw sample, budget permitting."""
        size = item_bytes(item) if item is not None else 64
        if self.nbytes + size > self.max_bytes:
            return
        url, key = raw["__url__"], raw["__key__"]
        if (url, key) in self.items:
            return
        self.items[(url, key)] = item
        self.nbytes += size
        self.cached[url] = self.cached.get(url, 0) + 1
        self._check_complete(url)

    def _check_complete(self, url: str) -> None:
        keys = self.order.get(url)
        if keys is not None and self.cached.get(url, 0) == len(keys):
            self.complete.add(url)
