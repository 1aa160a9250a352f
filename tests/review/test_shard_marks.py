"""``hmr shard`` honours the review's marks: marked rows are left out and listed in the index."""

from __future__ import annotations

import json
import tarfile

from hmr.core.schema import open_store
from hmr.review.marks import update_marks
from loaders.shard import ShardConfig, shard_store
from tests.review.conftest import make_store


def _keys(set_dir):
    keys = set()
    for tar in sorted(set_dir.glob("shard-*.tar")):
        with tarfile.open(tar) as t:
            keys |= {m.name.split(".", 1)[0] for m in t.getmembers()}
    return keys


def test_shard_skips_marked_samples_and_reports_them(tmp_path):
    path = make_store(tmp_path, n=10, name="shm")
    cfg = ShardConfig(crop_size=64, samples_per_shard=4)
    set_dir = shard_store(path, tmp_path / "out", cfg, progress=False)
    assert len(_keys(set_dir)) == 10
    update_marks(path, set_marks={1: "flipped", 6: "cut box", 9: "bad fit"}, store=open_store(path))
    set_dir = shard_store(path, tmp_path / "out", cfg, progress=False)  # rerun: the marked shards are redone
    index = json.loads((set_dir / "index.json").read_text())
    assert index["num_samples"] == 7
    marked = [s for s in index["skipped"] if s.get("marked")]
    assert [(s["index"], s["source_key"], s["reason"]) for s in marked] == [
        (1, "ann:1001", "marked excluded: flipped"), (6, "ann:1006", "marked excluded: cut box"),
        (9, "ann:1009", "marked excluded: bad fit")]
    keys = _keys(set_dir)
    assert len(keys) == 7 and not any(k.endswith(("000000001", "000000006", "000000009")) for k in keys)
