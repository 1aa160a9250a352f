"""``hmr verify SHARD_SET``: an index checked against its folder (docs/reliability.md).

The index must list at least one shard; its ``num_samples`` must be the sum of its shards';
the shards' store rows must cover the store without gap or overlap (a dropped shard leaves
rows in no shard), and shards plus skipped samples must make the store's count; a shard file
the index does not list fails. Every shard's size and sha256 must match the index, and its
members must be exactly ``<key>.jpg``, ``<key>.json`` and ``<key>.kp.npy``: a ``.pyd`` or
``.pickle`` member (which webdataset's default decoders unpickle) fails even when the index
was updated to match it. Shard names must stay inside the set (:func:`load_shard_set`
refuses the others before anything is read).
"""

from __future__ import annotations

import os
from pathlib import Path

from hmr.core.errors import HmrError
from loaders.shard import INDEX_NAME, MEMBER_EXTENSIONS, ShardSet, _sha256, load_shard_set


def _index_problems(sset: ShardSet) -> list[str]:
    """What the index itself gets wrong: no shards, counts that do not add up, rows of the
    store that no shard covers (a dropped shard), shard files the index does not list."""
    where = sset.root / INDEX_NAME
    if not sset.shards:
        return [f"{where}: lists no shards"]
    problems = []
    total = sum(int(s.get("num_samples", 0)) for s in sset.shards)
    if total != sset.num_samples:
        problems.append(f"{where}: num_samples {sset.num_samples}, but its shards hold {total}")
    rows = sorted(tuple(s.get("rows") or (0, 0)) for s in sset.shards)
    expected = 0
    for start, stop in rows:
        if start != expected:
            problems.append(f"{where}: store rows {expected}..{start} are in no shard (a shard dropped?)"
                            if start > expected else f"{where}: shards overlap at store row {start}")
        expected = max(expected, stop)
    store_n = sset.index.get("store_num_samples")
    if store_n is not None and expected != int(store_n):
        problems.append(f"{where}: shards cover store rows 0..{expected}, the store has {store_n}")
    if store_n is not None and total + len(sset.index.get("skipped", [])) != int(store_n):
        problems.append(f"{where}: {total} samples + {len(sset.index.get('skipped', []))} skipped "
                        f"!= the store's {store_n}")
    listed = {s["name"] for s in sset.shards}
    for f in sorted(sset.root.glob("shard-*.tar")):
        if f.name not in listed:
            problems.append(f"{f}: a shard file the index does not list")
    return problems


def _member_problems(f: Path, names: list[str]) -> tuple[list[str], int]:
    """(problems, number of samples) of a shard's member names: only ``<key>.jpg``,
    ``<key>.json`` and ``<key>.kp.npy``, all three per key."""
    problems, keys = [], {}
    for name in names:
        key, _, ext = name.partition(".")
        if "/" in name or ext not in MEMBER_EXTENSIONS:
            problems.append(f"{f}: member {name!r} is not one our shards hold (only "
                            f"{', '.join('.' + e for e in MEMBER_EXTENSIONS)}; a pickle would run code)")
            continue
        keys.setdefault(key, set()).add(ext)
    incomplete = [k for k, exts in keys.items() if exts != set(MEMBER_EXTENSIONS)]
    if incomplete:
        problems.append(f"{f}: sample {incomplete[0]!r} lacks members "
                        f"{sorted(set(MEMBER_EXTENSIONS) - keys[incomplete[0]])}")
    return problems, len(keys)


def verify_shard_set(path: str | os.PathLike, check_digest: bool = True) -> list[str]:
    """Problems with a shard set (missing / resized / altered / miscounted shards, an index
    that does not add up, shard names outside the set, members that are not ours); [] if none."""
    import tarfile

    try:
        sset = load_shard_set(path)
    except (HmrError, KeyError, TypeError, ValueError) as exc:
        return [f"{path}: unusable shard index ({exc})"]
    problems = _index_problems(sset)
    for s in sset.shards:
        if not {"name", "bytes", "sha256", "num_samples"} <= set(s):
            problems.append(f"{sset.root / INDEX_NAME}: shard entry {s} lacks name/bytes/sha256/num_samples")
            continue
        f = sset.root / s["name"]
        if not f.exists():
            problems.append(f"{f}: missing")
            continue
        if f.stat().st_size != s["bytes"]:
            problems.append(f"{f}: {f.stat().st_size} bytes, index says {s['bytes']} (truncated?)")
            continue
        if check_digest and _sha256(f) != s["sha256"]:
            problems.append(f"{f}: sha256 differs from the index")
            continue
        try:
            with tarfile.open(f) as tf:
                members = tf.getmembers()
        except (tarfile.TarError, OSError) as exc:
            problems.append(f"{f}: unreadable tar ({exc})")
            continue
        odd = [m.name for m in members if not m.isfile()]
        if odd:
            problems.append(f"{f}: member {odd[0]!r} is not a regular file")
        member_problems, count = _member_problems(f, [m.name for m in members if m.isfile()])
        problems.extend(member_problems)
        if count != s["num_samples"]:
            problems.append(f"{f}: {count} samples, index says {s['num_samples']}")
    return problems
