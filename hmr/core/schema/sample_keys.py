"""The sample-key contract: how shards, the loaders and SPIN's fits tables name one sample.

A store row becomes one shard sample keyed ``<set name>_<store row, 9 digits>``
(``h36m-train_000001234``); the batches carry the key, and a fits table is keyed by it, so a
fit finds its sample again in any epoch, shuffle or augmentation. The set name is the shard
set's folder, by default ``<dataset>-<split>``. Keys keep to ``[A-Za-z0-9_-]``: WebDataset
splits a key at its first dot, and the set name is what precedes the *last* underscore.
"""

from __future__ import annotations

import re

ROW_DIGITS = 9


def safe_key(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9_-]`` replaced by ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def set_name(dataset: str, split: str) -> str:
    """The default shard-set name of a store: ``<dataset>-<split>``, made key-safe."""
    return safe_key(f"{dataset}-{split}")


def sample_key(set_name: str, row: int) -> str:
    """Key of store row ``row`` in shard set ``set_name`` (already key-safe)."""
    return f"{set_name}_{row:0{ROW_DIGITS}d}"


def set_of_key(key: str) -> str:
    """The shard-set name of a sample key (what precedes its last underscore)."""
    return key.rsplit("_", 1)[0]
