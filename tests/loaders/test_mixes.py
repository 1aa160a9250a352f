"""Mix presets (the benchmark's 11), user mixes, and resolving mixes against shard folders."""

from __future__ import annotations

import json

import pytest

from hmr.core.errors import ConfigError, HmrError
from loaders.mixes import MIXES, load_mix, mix_from_dict, resolve_mix
from loaders.shard import ShardConfig, shard_store
from tests.fixtures.loaders import pinhole_store


def test_eleven_presets_with_the_published_ratios():
    assert list(MIXES)[:11] == [f"mix{i}" for i in range(1, 12)]
    for mix in list(MIXES.values())[:11]:
        assert sum(c.ratio for c in mix.components) == pytest.approx(1.0, abs=1e-3), mix.name
        assert len({c.set for c in mix.components}) == len(mix.components)
        assert "hmr-benchmarks" in mix.source
    # Spot checks against configs/mixed/resnet50_hmr_mix{N}.py (partition=...).
    assert [(c.set, c.ratio) for c in MIXES["mix2"].components] == [
        ("h36m-train", 0.5), ("mpi_inf_3dhp-train", 0.3), ("eft_coco-train", 0.2)]
    assert [c.ratio for c in MIXES["mix5"].components] == [0.35, 0.15, 0.1, 0.1, 0.1, 0.2]
    assert [c.ratio for c in MIXES["mix6"].components] == [0.5, 0.233, 0.046, 0.021, 0.2]
    assert MIXES["mix6"].components[-1].ann_file == "spin_mpi_inf_3dhp_train.npz"
    assert len(MIXES["mix10"].components) == 10


def test_user_mix_files(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text('name = "mine"\n[[components]]\nset = "a-train"\nratio = 3\n'
                    '[[components]]\nset = "b-train"\nratio = 1\n')
    mix = load_mix(str(toml))
    assert mix.name == "mine" and mix.ratios() == [0.75, 0.25]
    js = tmp_path / "other.json"
    js.write_text(json.dumps({"components": [{"set": "a-train", "ratio": 1}]}))
    assert load_mix(str(js)).name == "other"
    with pytest.raises(ConfigError, match="unknown mix"):
        load_mix("mix99")
    with pytest.raises(ConfigError, match="positive"):
        mix_from_dict({"components": [{"set": "a", "ratio": 0}]})
    with pytest.raises(ConfigError, match="components"):
        mix_from_dict({"parts": []})


def test_resolve_names_the_missing_datasets(tmp_path):
    store = pinhole_store(tmp_path, n=4, dataset="h36m")
    shard_store(store, tmp_path / "shards", ShardConfig(samples_per_shard=4), progress=False)
    with pytest.raises(HmrError) as err:
        resolve_mix(MIXES["mix2"], tmp_path / "shards")
    text = str(err.value)
    assert "mpi_inf_3dhp-train or humandata-mpi_inf_3dhp_train" in text and "eft_coco-train" in text
    assert "h36m-train or" not in text
    # The benchmark's own HumanData files, imported with `hmr convert humandata`, count too.
    for stem in ("mpi_inf_3dhp_train", "eft_coco_train"):
        store = pinhole_store(tmp_path, n=4, dataset="humandata", split=stem)
        shard_store(store, tmp_path / "shards", ShardConfig(samples_per_shard=4), progress=False)
    assert [s.name for s, _ in resolve_mix(MIXES["mix2"], tmp_path / "shards")] == [
        "h36m-train", "humandata-mpi_inf_3dhp_train", "humandata-eft_coco_train"]
    mix = mix_from_dict({"components": [{"set": "h36m-train", "ratio": 2}, {"set": "coco", "ratio": 1}]})
    resolved = resolve_mix(mix, tmp_path / "shards", aliases={"coco": "h36m-train"})
    assert [round(r, 3) for _, r in resolved] == [0.667, 0.333]
    assert resolved[0][0].name == "h36m-train"
