"""Batches are bit-identical in content to the loader's before the speed work (issue 20).

The digests in data/golden_stream.json were computed by the loader as it was before (see
golden_stream.py); the shard sets are rebuilt here from the same generated scenes. Where this
machine's JPEG encoder writes other shard bytes (an OpenCV other than the one
.ci/tested-versions.txt pins), the comparison is meaningless and the test fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from loaders.batch import normalise_batch
from tests.loaders.golden_stream import golden_batches, make_shards, shard_digests

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_stream.json").read_text())


@pytest.fixture(scope="module")
def golden_root(tmp_path_factory):
    root = make_shards(tmp_path_factory.mktemp("golden"))
    # The golden digests were made with the OpenCV wheel .ci/tested-versions.txt pins; other JPEG bytes would make
    # every comparison below meaningless, so that is a failure, not a skip.
    assert shard_digests(root) == GOLDEN["shards"], (
        "the generated shards differ from the golden ones (another OpenCV JPEG encoder?)")
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


def on(device: str):
    def normalise(batch: dict) -> dict:
        assert batch["img"].dtype == torch.uint8 and batch["img_lut"].shape[1:] == (3, 256)
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        out = normalise_batch(moved)
        assert "img_lut" not in out and out["img"].dtype == torch.float32
        return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
    return normalise


def test_uint8_batches_normalised_on_the_device_give_the_same_floats(golden_root):
    compare(golden_batches(golden_root, on("cpu"), normalise_on_device=True), GOLDEN["batches"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_uint8_batches_normalised_on_cuda_give_the_same_floats(golden_root):
    compare(golden_batches(golden_root, on("cuda"), normalise_on_device=True), GOLDEN["batches"])
