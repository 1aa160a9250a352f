"""A hostile shard index is an error naming the file and the key (issue 21, item 3).
Goes with docs-drafts/reliability-B-shard-index.patch (loaders/shard.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from hmr.core.errors import HmrError
from loaders.shard import ShardConfig, load_shard_set, shard_store
from tests.fixtures.loaders import pinhole_store

NESTING_BOMB = b"[" * 100_000 + b"]" * 100_000  # json.loads recurses once per level


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-index")
    store = pinhole_store(out, n=8, seed=4, dataset="hostile")
    shard_store(store, out / "shards", ShardConfig(samples_per_shard=4, crop_size=96), progress=False)
    return out / "shards" / "hostile-train"


@pytest.mark.parametrize("missing", ["shards", "num_samples", "name"])
def test_an_index_without_a_key_names_the_file_and_the_key(shard_set, tmp_path, missing):
    root = tmp_path / "index"
    shutil.copytree(shard_set, root)
    index = json.loads((root / "index.json").read_text())
    del index[missing]
    (root / "index.json").write_text(json.dumps(index))
    with pytest.raises(HmrError, match=missing) as err:
        load_shard_set(root)
    assert err.value.path == str(root / "index.json")


def test_a_nesting_bomb_as_the_index_names_the_file(shard_set, tmp_path):
    root = tmp_path / "index-bomb"
    shutil.copytree(shard_set, root)
    (root / "index.json").write_bytes(NESTING_BOMB)
    with pytest.raises(HmrError) as err:
        load_shard_set(root)
    assert err.value.path == str(root / "index.json")
