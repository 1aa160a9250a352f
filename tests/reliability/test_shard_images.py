"""Sharding checks its images: a JPEG or PNG cut short (OpenCV decodes it into a half-grey
picture without an error) becomes a skipped sample named by store row, source_key and file;
a store none of whose samples can be sharded is an error naming the store, not an empty set."""

from __future__ import annotations

import json
import shutil

import pytest

from cli.main import main
from hmr.core.errors import HmrError
from hmr.core.schema import open_store
from loaders import ShardConfig, load_shard_set, shard_store
from loaders.shard import image_problem
from tests.fixtures.loaders import COCO_DIR, coco_store, pinhole_store
from tests.fixtures.paths import SHARED_FIXTURES

CFG = dict(crop_size=32, samples_per_shard=4)


def test_real_images_are_complete():
    files = [p for p in SHARED_FIXTURES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert files, "the shared fixtures hold real images"
    assert {p.name: image_problem(p.read_bytes()) for p in files} == {p.name: None for p in files}


def test_jpeg_cut_to_2kb_is_a_named_skipped_sample(tmp_path):
    images = shutil.copytree(COCO_DIR, tmp_path / "images")
    store = coco_store(tmp_path / "stores")
    paths = list(open_store(store).read("image_path"))
    victim = paths[0]
    (images / victim).write_bytes((images / victim).read_bytes()[:2048])
    rows = [i for i, p in enumerate(paths) if p == victim]
    set_dir = shard_store(store, tmp_path / "shards", ShardConfig(image_root=str(images), **CFG),
                          progress=False)
    sset = load_shard_set(set_dir)
    assert sset.num_samples == len(paths) - len(rows)
    skipped = sset.index["skipped"]
    assert [s["index"] for s in skipped] == rows
    keys = list(open_store(store).read("source_key"))
    assert all(s["source_key"] == keys[s["index"]] and victim in s["reason"] and "truncated" in s["reason"]
               for s in skipped)


def test_png_cut_short_is_skipped(tmp_path):
    store = pinhole_store(tmp_path / "stores", n=6)
    image_dir = tmp_path / "stores" / "images-pinhole"
    png = image_dir / "00002.png"
    png.write_bytes(png.read_bytes()[:-40])
    set_dir = shard_store(store, tmp_path / "shards", ShardConfig(**CFG), progress=False)
    index = json.loads((set_dir / "index.json").read_text())
    assert index["num_samples"] == 5 and [s["index"] for s in index["skipped"]] == [2]
    assert "PNG is truncated" in index["skipped"][0]["reason"]


def test_store_whose_images_are_all_missing_is_an_error_naming_it(tmp_path, capsys):
    store = pinhole_store(tmp_path / "stores", n=5)
    shutil.rmtree(tmp_path / "stores" / "images-pinhole")
    with pytest.raises(HmrError, match="no sample could be sharded") as err:
        shard_store(store, tmp_path / "shards", ShardConfig(**CFG), progress=False)
    assert str(store) in str(err.value)
    assert not (tmp_path / "shards" / "pinhole-train" / "index.json").exists()
    assert main(["shard", str(store), "--out", str(tmp_path / "shards2"), "--crop-size", "32"]) != 0
    assert str(store) in capsys.readouterr().err
