"""Batches are bit-identical in content to the loader's before the speed work (issue 20).

The digests in data/golden_stream.json were computed by the loader as it was before (see
golden_stream.py); the shard sets are rebuilt here from the same generated scenes. Where this
machine's JPEG encoder writes other shard bytes, the comparison is meaningless and skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.loaders.golden_stream import golden_batches, make_shards, shard_digests

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_stream.json").read_text())


@pytest.fixture(scope="module")
def golden_root(tmp_path_factory):
    root = make_shards(tmp_path_factory.mktemp("golden"))
    if shard_digests(root) != GOLDEN["shards"]:
        pytest.skip("this OpenCV build encodes the generated crops to other JPEG bytes")
    return root


def compare(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for variant in want:
        assert len(got[variant]) == len(want[variant]), variant
        for i, (g, w) in enumerate(zip(got[variant], want[variant])):
            changed = sorted(name for name in w if g.get(name) != w[name])
            assert not changed and g.keys() == w.keys(), f"{variant} batch {i}: {changed} differ"


def test_batches_are_unchanged(golden_root):
    compare(golden_batches(golden_root), GOLDEN["batches"])
