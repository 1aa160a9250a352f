"""``hmr verify SHARD_SET``: an index checked against its folder (docs/reliability.md).

The index must list at least one shard; its ``num_samples`` must be the sum of its shards';
the shards' store rows must cover the store without gap or overlap (a dropped shard leaves
rows in no shard), and shards plus skipped samples must make the store's count; a shard file
the index does not list fails. Every shard's size and sha256 must match the index, and its
members must be exactly ``<key>.jpg``, ``<key>.json`` and ``<key>.kp.npy``: a ``.pyd`` or
``.pickle`` member (which webdataset's default decoders unpickle) fails even when the index
was updated to match it. Shard names must stay inside the set (:func:`load_shard_set`
refuses the others before anything is read).

A set given by URL prefix (``http(s)://``, ``s3://``, ``gs://``; docs/scale-out.md) is checked
the same way: its ``index.json`` is read from the prefix and every shard is streamed once
(size, sha256 and members from the one read, nothing written to disk). Shard files the index
does not list are found where the storage can list a prefix (object stores, HTTP servers
with directory pages); elsewhere that one check is skipped.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

from hmr.core.errors import HmrError
from loaders.shard import INDEX_NAME, MEMBER_EXTENSIONS, ShardSet, _sha256, is_remote, load_shard_set


def _index_problems(sset: ShardSet) -> list[str]:
    """What the index itself gets wrong: no shards, counts that do not add up, rows of the
    store that no shard covers (a dropped shard), shard files the index does not list."""
    where = _at(sset, INDEX_NAME)
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
    for f in _shard_files(sset):
        if f.rsplit("/", 1)[-1] not in listed:
            problems.append(f"{f}: a shard file the index does not list")
    return problems


def _at(sset: ShardSet, name: str) -> str:
    """Where a file of the set is: a path, or a URL under the set's prefix."""
    return f"{sset.root}/{name}" if isinstance(sset.root, str) else str(sset.root / name)


def _shard_files(sset: ShardSet) -> list[str]:
    """The set's ``shard-*.tar`` files; for a URL prefix, those its storage lists ([] where it
    cannot list: an HTTP server without directory pages)."""
    if not isinstance(sset.root, str):
        return [str(f) for f in sorted(sset.root.glob("shard-*.tar"))]
    import fsspec

    try:
        fs, _ = fsspec.core.url_to_fs(sset.root)
        fs.invalidate_cache()  # a listing cached earlier in this process may be stale
        listed = fs.glob(_at(sset, "shard-*.tar"))
    except Exception:  # noqa: BLE001 - no listing: the index's own checks still run
        return []
    scheme = sset.root.split("://", 1)[0]
    return sorted(f if "://" in f else f"{scheme}://{f}" for f in listed)


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
    that does not add up, shard names outside the set, members that are not ours); [] if none.
    ``path``: the set's folder or URL prefix."""
    try:
        sset = load_shard_set(path)
    except (HmrError, KeyError, TypeError, ValueError) as exc:
        return [f"{path}: unusable shard index ({exc})"]
    problems = _index_problems(sset)
    read = _read_remote_shard if is_remote(str(sset.root)) else _read_local_shard
    for s in sset.shards:
        if not {"name", "bytes", "sha256", "num_samples"} <= set(s):
            problems.append(f"{_at(sset, INDEX_NAME)}: shard entry {s} lacks name/bytes/sha256/num_samples")
            continue
        f = _at(sset, s["name"])
        shard = read(f, s["bytes"], check_digest)
        if shard.missing:
            problems.append(f"{f}: missing")
        elif shard.unreadable:
            problems.append(f"{f}: unreadable ({shard.error})")
        elif shard.size != s["bytes"]:
            problems.append(f"{f}: {shard.size} bytes, index says {s['bytes']} (truncated?)")
        elif check_digest and shard.sha256 != s["sha256"]:
            problems.append(f"{f}: sha256 differs from the index")
        elif shard.error is not None:
            problems.append(f"{f}: unreadable tar ({shard.error})")
        else:
            odd = [name for name, is_file in shard.members if not is_file]
            if odd:
                problems.append(f"{f}: member {odd[0]!r} is not a regular file")
            member_problems, count = _member_problems(f, [name for name, is_file in shard.members if is_file])
            problems.extend(member_problems)
            if count != s["num_samples"]:
                problems.append(f"{f}: {count} samples, index says {s['num_samples']}")
    return problems


class _ShardRead:
    """What one read of a shard found: its size, sha256 (when asked), (name, is a regular
    file) of its members, or why the tar (``error``) or the file (``unreadable``) could not
    be read."""

    def __init__(self) -> None:
        self.missing, self.unreadable, self.size, self.sha256 = False, False, -1, ""
        self.members: list[tuple[str, bool]] = []
        self.error: str | None = None


def _read_local_shard(f: str, expected_bytes: int, check_digest: bool) -> _ShardRead:
    out, path = _ShardRead(), Path(f)
    if not path.exists():
        out.missing = True
        return out
    out.size = path.stat().st_size
    if out.size != expected_bytes:
        return out
    if check_digest:
        out.sha256 = _sha256(path)
    try:
        with tarfile.open(path) as tf:
            out.members = [(m.name, m.isfile()) for m in tf.getmembers()]
    except (tarfile.TarError, OSError) as exc:
        out.error = str(exc)
    return out


class _Counting:
    """A read-only stream that counts (and hashes) the bytes read through it."""

    def __init__(self, raw, digest: bool):
        self.raw, self.size = raw, 0
        self.sha = hashlib.sha256() if digest else None

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.size += len(data)
        if self.sha is not None:
            self.sha.update(data)
        return data


def _read_remote_shard(url: str, expected_bytes: int, check_digest: bool) -> _ShardRead:
    """One streamed read of a remote shard: tar members as they pass, then the rest of the
    bytes for the size and digest (a tar cut short still reports its size, like a local one)."""
    from loaders.stream import open_shard

    out = _ShardRead()
    try:
        with open_shard(url) as raw:
            fh = _Counting(raw, check_digest)
            try:
                with tarfile.open(fileobj=fh, mode="r|") as tf:
                    out.members = [(m.name, m.isfile()) for m in tf]
            except (tarfile.TarError, EOFError) as exc:
                out.error = str(exc)
            while fh.read(1 << 20):
                pass
    except FileNotFoundError:
        out.missing = True
        return out
    except Exception as exc:  # noqa: BLE001 - storage libraries raise their own classes
        out.unreadable, out.error = True, f"{type(exc).__name__}: {exc}"
        return out
    out.size = fh.size
    out.sha256 = fh.sha.hexdigest() if fh.sha is not None else ""
    return out
