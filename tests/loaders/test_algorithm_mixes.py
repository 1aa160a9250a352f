"""The mix presets of the benchmark's GraphCMR, PARE and Graphormer rows."""

from __future__ import annotations

import pytest

from hmr.core.sources import parse_shard_set_name
from loaders.mixes import MIXES, resolve_mix
from loaders.shard import ShardConfig, shard_store
from tests.fixtures.loaders import pinhole_store

# the benchmark table's datasets per row, as hmr.core.sources names them
ROWS = {
    "graphcmr": {"h36m", "coco2014", "lsp", "lspet", "mpii", "up3d"},
    "pare": {"h36m", "mpi_inf_3dhp", "eft_coco", "eft_lspet", "eft_mpii"},
    "graphormer": {"h36m", "muco3dhp", "coco2014", "up3d", "mpii"},
}


@pytest.mark.parametrize("name", list(ROWS))
def test_preset_names_the_rows_sources_and_sums_to_one(name):
    mix = MIXES[name]
    sources = []
    for comp in mix.components:
        parsed = parse_shard_set_name(comp.set)
        assert parsed is not None, comp.set
        sources.append(parsed[0].name)
        assert comp.ann_file and comp.ratio > 0
    assert set(sources) == ROWS[name] and len(sources) == len(ROWS[name])
    assert sum(c.ratio for c in mix.components) == pytest.approx(1.0, abs=1e-9)
    assert "github.com/" in mix.source and " @ " in mix.source


def test_published_ratios():
    ratios = {name: {parse_shard_set_name(c.set)[0].name: c.ratio for c in MIXES[name].components} for name in ROWS}
    # nkolot/GraphCMR datasets/datasets.py: H36M .3, LSP .1 (here LSP + LSPET), COCO .2, MPII .2, UP-3D .2
    assert ratios["graphcmr"] == {"h36m": 0.3, "lsp": 0.05, "lspet": 0.05, "coco2014": 0.2, "mpii": 0.2, "up3d": 0.2}
    # MMHuman3D configs/pare/hrnet_w32_conv_pare_mix.py partition
    assert ratios["pare"] == {"h36m": 0.5, "eft_coco": 0.233, "eft_lspet": 0.046, "eft_mpii": 0.021,
                              "mpi_inf_3dhp": 0.2}
    assert MIXES["pare"].components[-1].ann_file == "mpi_inf_3dhp_train.npz"
    assert set(ratios["graphormer"].values()) == {0.2}


def test_graphormer_mix_resolves_against_shard_sets(tmp_path):
    for source, split in (("h36m", "train"), ("muco3dhp", "train"), ("coco2014", "train"),
                          ("up3d", "trainval"), ("mpii", "train")):
        store = pinhole_store(tmp_path / source, n=2, dataset=source, split=split)
        shard_store(store, tmp_path / "shards", ShardConfig(samples_per_shard=2), progress=False)
    resolved = resolve_mix(MIXES["graphormer"], tmp_path / "shards")
    assert [s.name for s, _ in resolved] == ["h36m-train", "muco3dhp-train", "coco2014-train", "up3d-trainval",
                                            "mpii-train"]
    assert [r for _, r in resolved] == pytest.approx([0.2] * 5)
