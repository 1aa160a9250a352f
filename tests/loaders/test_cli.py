"""`hmr shard` and `hmr mixes` from the command line."""

from __future__ import annotations

from cli.main import main
from loaders.shard import load_shard_set
from loaders.shard_check import verify_shard_set
from tests.fixtures.loaders import coco_store


def test_hmr_shard_writes_a_verified_shard_set(tmp_path, capsys):
    store = coco_store(tmp_path)
    code = main(["shard", str(store), "--out", str(tmp_path / "shards"), "--samples-per-shard", "5",
                 "--crop-size", "128", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "12 samples in 3 shards" in out
    sset = load_shard_set(tmp_path / "shards" / "coco-fixture-train")
    assert sset.index["crop_size"] == 128
    assert verify_shard_set(sset.root) == []


def test_hmr_shard_reports_a_missing_store_in_one_line(tmp_path, capsys):
    code = main(["shard", str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "s")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.zarr" in err and "Traceback" not in err


def test_hmr_mixes_lists_presets_and_checks_shards(tmp_path, capsys):
    assert main(["mixes"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nmix") + out.startswith("mix") == 11
    assert main(["mixes", "--show", "mix4", "--shards", str(tmp_path)]) == 2
    assert "muco3dhp-train or humandata-muco3dhp_no3dkp_train" in capsys.readouterr().err


def test_hmr_shard_refuses_two_stores_for_one_set(tmp_path, capsys):
    store = coco_store(tmp_path)
    assert main(["shard", str(store), str(store), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert "both shard into 'coco-fixture-train'" in capsys.readouterr().err
