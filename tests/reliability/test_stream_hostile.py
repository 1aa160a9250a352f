"""A hostile shard sample is skipped and counted like any corrupt sample (issue 21, item 3)."""

from __future__ import annotations

import io
import shutil
import tarfile

import pytest

from loaders import stream
from loaders.shard import ShardConfig, load_shard_set, shard_store
from loaders.stream import EpochLoader, LoaderStats, ShardStream, StreamConfig
from tests.fixtures.loaders import pinhole_store

NESTING_BOMB = b"[" * 100_000 + b"]" * 100_000  # json.loads recurses once per level


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile")
    store = pinhole_store(out, n=8, seed=4, dataset="hostile")
    shard_store(store, out / "shards", ShardConfig(samples_per_shard=4, crop_size=96), progress=False)
    return out / "shards" / "hostile-train"


@pytest.fixture(autouse=True)
def fresh_stats(monkeypatch):
    monkeypatch.setattr(stream, "STATS", LoaderStats())


def _replace_member(tar_path, key: str, ext: str, data: bytes) -> None:
    """Rewrite the tar with the member ``key.ext`` holding ``data``."""
    out = io.BytesIO()
    with tarfile.open(tar_path) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            body = src.extractfile(m).read()
            if m.name == f"{key}.{ext}":
                body = data
            info = tarfile.TarInfo(m.name)
            info.size = len(body)
            dst.addfile(info, io.BytesIO(body))
    tar_path.write_bytes(out.getvalue())


def test_a_nesting_bomb_in_a_sample_json_is_skipped_and_counted(shard_set, tmp_path):
    root = tmp_path / "bomb"
    shutil.copytree(shard_set, root)
    tar = root / "shard-000000.tar"
    with tarfile.open(tar) as members:
        keys = sorted({m.split(".", 1)[0] for m in members.getnames()})
    _replace_member(tar, keys[1], "json", NESTING_BOMB)
    cfg = StreamConfig(out_size=64, batch_size=4, shuffle_buffer=4, resampled=False, drop_last=False, train=False)
    got = [k for batch in EpochLoader(ShardStream([(load_shard_set(root), 1.0)], cfg), None) for k in batch["key"]]
    assert len(got) == 7 and keys[1] not in got
    assert stream.STATS.corrupt == 1 and stream.STATS.corrupt_keys == [f"{tar}:{keys[1]}"]
