"""``hmr shard`` honours the review's marks: marked samples are left out and listed in the
index, found by their source key in another conversion of the store."""

from __future__ import annotations

import json
import shutil
import tarfile

from hmr.core.schema import open_store
from hmr.review.marks import update_marks
from loaders.shard import ShardConfig, marked_excluded, shard_store
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


def _reconvert(path, tmp_path, order):
    """The same source converted again into the same place: another order, maybe fewer samples."""
    shutil.rmtree(path)
    return make_store(tmp_path, n=10, name=path.name.split("_")[0], order=order)


def test_marks_follow_their_samples_through_a_reconversion(tmp_path, capsys):
    """Marks name samples by source key: a store rebuilt in another order still excludes the
    same people; a marked sample the new conversion dropped is reported, not silently lost."""
    from hmr.review.marks import format_marks, resolve_marks

    path = make_store(tmp_path, n=10, name="rec")
    update_marks(path, set_marks={1: "flipped", 6: "cut box", 9: "bad fit"}, store=open_store(path))
    order = [9, 8, 7, 5, 4, 3, 2, 1, 0]  # reversed, and sample 6 is gone
    assert _reconvert(path, tmp_path, order) == path
    store = open_store(path)
    resolved = resolve_marks(path, store)
    assert {r: m["source_key"] for r, m in resolved.rows.items()} == {0: "ann:1009", 7: "ann:1001"}
    assert [(m["source_key"], m["row"], m["reason"]) for m in resolved.missing] == [("ann:1006", 6, "cut box")]
    set_dir = shard_store(path, tmp_path / "out", ShardConfig(crop_size=64, samples_per_shard=4), progress=False)
    index = json.loads((set_dir / "index.json").read_text())
    assert index["num_samples"] == 7
    assert sorted((s["index"], s["source_key"]) for s in index["skipped"] if s.get("marked")) == [
        (0, "ann:1009"), (7, "ann:1001")]
    assert index["marks_not_found"] == [{"source_key": "ann:1006", "row_when_marked": 6, "reason": "cut box"}]
    assert "1 marks in rec_val.zarr.marks.json name samples that are not in" in capsys.readouterr().err
    listing = format_marks(path)
    assert "2 marked, 1 not found" in listing and "ann:1006" in listing and "was row 6" in listing
    # a write keeps the missing mark (it may come back with another conversion) until forgotten
    update_marks(path, set_marks={2: "blurred"}, store=store)
    again = resolve_marks(path, store)
    assert sorted(again.rows) == [0, 2, 7] and len(again.missing) == 1
    update_marks(path, forget=["ann:1006"], store=store)
    assert resolve_marks(path, store).missing == []


def test_a_schema_1_marks_file_is_still_read(tmp_path):
    """Marks written before the identity keys (schema 1: keyed by row, the source key in each
    mark) keep working, through a reconversion too, and the next write saves schema 2."""
    from hmr.review.marks import marks_path, resolve_marks

    path = make_store(tmp_path, n=10, name="old")
    legacy = {"format": "hmrkit-review-marks", "schema": 1, "version": 4, "dataset": "old", "split": "val",
              "num_samples": 10, "marks": {
                  "3": {"reason": "flipped", "excluded": True, "source_key": "ann:1003", "time": "t"},
                  "8": {"reason": "cut", "excluded": True, "source_key": "ann:1008", "time": "t"}}}
    marks_path(path).write_text(json.dumps(legacy))
    assert marked_excluded(path) == {3: "flipped", 8: "cut"}
    _reconvert(path, tmp_path, [8, 7, 6, 5, 4, 3, 2, 1, 0, 9])
    store = open_store(path)
    assert marked_excluded(path, store) == {0: "cut", 5: "flipped"}
    update_marks(path, set_marks={9: "dark"}, store=store)
    saved = json.loads(marks_path(path).read_text())
    assert saved["schema"] == 2 and saved["version"] == 5
    assert {k: m["row"] for k, m in saved["marks"].items()} == {"ann:1008": 0, "ann:1003": 5, "ann:1009": 9}
    assert sorted(resolve_marks(path, store).rows) == [0, 5, 9]


def test_repeated_and_empty_source_keys_get_distinct_identities():
    from hmr.core.schema.marks import sample_identities

    ids = sample_identities(["a", "b", "a", "", "a", "c", ""])
    assert ids.tolist() == ["a", "b", "a#1", "row:3", "a#2", "c", "row:6"]


def test_a_reconversion_with_as_many_samples_is_not_taken_for_the_same_store(tmp_path):
    """Same sample count, rebuilt at once (the same creation second): the source-key digest
    tells it from the store the marks were made on, and the marks move with their samples."""
    from hmr.review.marks import resolve_marks

    path = make_store(tmp_path, n=10, name="swap")
    update_marks(path, set_marks={0: "flipped", 5: "cut"}, store=open_store(path))
    assert sorted(resolve_marks(path).rows) == [0, 5]
    _reconvert(path, tmp_path, [5, 1, 2, 3, 4, 0, 6, 7, 8, 9])
    resolved = resolve_marks(path)
    assert {r: m["reason"] for r, m in resolved.rows.items()} == {5: "flipped", 0: "cut"} and not resolved.missing
