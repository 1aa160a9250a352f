"""hmr convert --part I/N + hmr store merge == one single-process conversion, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from converters.driver import merge_parts, run_conversion
from converters.options import ConvertOptions
from hmr.core.errors import HmrError
from hmr.core.schema import open_store
from tests.fixtures import converters_2d as fx2
from tests.fixtures import converters_3d as fx3


def _convert(name, root, out, split, *, part=None, block=1, skip_bad=False, **extra):
    options = ConvertOptions(workers=1, extra={k: str(v) for k, v in extra.items()})
    return run_conversion(name, root, out, split=split, options=options, skip_bad=skip_bad, progress=False,
                          argv=["pytest"], part=part, part_block_items=block).store


def _same_store(a: Path, b: Path) -> None:
    """Same fields, dtypes and values; and every chunk file of the zarr stores identical."""
    sa, sb = open_store(a), open_store(b)
    assert len(sa) == len(sb) > 0 and sa.fields == sb.fields
    for field in sa.fields:
        x, y = sa.read(field), sb.read(field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        assert np.array_equal(x, y), field
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file() and p.name != ".zattrs")
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and p.name != ".zattrs")
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    differ = {k for k in set(sa.attrs) | set(sb.attrs) if sa.attrs.get(k) != sb.attrs.get(k)}
    assert differ <= {"created", "merged_from"} and "merged_from" in differ


def test_coco_parts_merge_to_the_single_process_store(tmp_path):
    root = tmp_path / "coco"
    fx2.write_coco(root, "val")
    single = _convert("coco2017", root, tmp_path / "single", "val")
    parts = [_convert("coco2017", root, tmp_path / "parts", "val", part=(i, 3)) for i in range(3)]
    assert [p.name for p in parts] == [f"coco2017_val.part-{i}-of-3.zarr" for i in range(3)]
    assert sum(len(open_store(p)) for p in parts) == len(open_store(single))
    assert all(0 < len(open_store(p)) < len(open_store(single)) for p in parts)  # each holds a real share
    out, manifest = merge_parts(parts[::-1], tmp_path / "merged.zarr", argv=["hmr", "store", "merge"])
    _same_store(single, out)
    doc, ref = json.loads(manifest.read_text()), json.loads((single.parent / (single.name + ".manifest.json")).read_text())
    assert doc["counts"] == ref["counts"] and doc["raw"]["digest"] == ref["raw"]["digest"]
    assert [p["store"] for p in doc["parts"]] == [p.name for p in parts]
    # the merged manifest describes the merged store: its files check out, and a change is caught
    assert main(["store", "validate", str(out)]) == 0
    chunk = next(out.glob("keypoints2d/0*"))
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
    assert main(["store", "validate", str(out)]) != 0


def test_pw3d_parts_merge_to_the_single_process_store(tmp_path):
    root = tmp_path / "3dpw"
    rng = np.random.default_rng(3)
    fx3.write_pw3d_sequence(root, "test", "downtown_walk_00", 3, rng, invalid={1: [1]})  # 5 samples
    single = _convert("pw3d", root, tmp_path / "single", "test")
    parts = [_convert("pw3d", root, tmp_path / "parts", "test", part=(i, 2), block=2) for i in range(2)]
    out, _ = merge_parts(parts, tmp_path / "merged.zarr")
    _same_store(single, out)
    assert open_store(out).read("has_smpl").all()


def test_skipped_records_keep_the_order(tmp_path):
    """A record refused with --skip-bad (an image missing) leaves its block short."""
    root = tmp_path / "lsp"
    fx2.write_lsp(root, n=12, skip_image=2)  # train: records 0..5, in blocks [0 1] [2 3] [4 5]
    single = _convert("lsp", root, tmp_path / "single", "train", skip_bad=True)
    parts = [_convert("lsp", root, tmp_path / "parts", "train", part=(i, 2), block=2, skip_bad=True)
             for i in range(2)]
    assert open_store(parts[0]).attrs["part"]["block_rows"] == [2, 2]
    assert open_store(parts[1]).attrs["part"]["block_rows"] == [1]  # record 2 refused
    assert open_store(parts[1]).attrs["part"]["block_skipped"] == [1]
    out, _ = merge_parts(parts, tmp_path / "merged.zarr")
    _same_store(single, out)
    # one skip report, as the single process wrote it
    report = json.loads((tmp_path / "merged.zarr.skipped.json").read_text())
    assert report == json.loads(single.with_name(single.name + ".skipped.json").read_text())
    assert len(report) == 1 and "im0003.jpg" in json.dumps(report)
    # a part's report that lost an entry is refused, naming it
    part_report = parts[1].with_name(parts[1].name + ".skipped.json")
    part_report.write_text("[]")
    with pytest.raises(HmrError, match="lists 0 records, the part skipped 1") as err:
        merge_parts(parts, tmp_path / "again.zarr")
    assert err.value.path == str(part_report)


def test_cli_parts_and_merge(tmp_path, capsys):
    """Default blocks: the 4 COCO records all fall in part 0; part 1 is an empty store."""
    root = tmp_path / "coco"
    fx2.write_coco(root, "val")
    out = tmp_path / "stores"
    for i in range(2):
        assert main(["convert", "coco2017", "--root", str(root), "--out", str(out), "--split", "val",
                     "--workers", "1", "--part", f"{i}/2"]) == 0
    assert len(open_store(out / "coco2017_val.part-1-of-2.zarr")) == 0
    assert main(["convert", "coco2017", "--root", str(root), "--out", str(out), "--split", "val",
                 "--workers", "1"]) == 0
    parts = [str(out / f"coco2017_val.part-{i}-of-2.zarr") for i in range(2)]
    assert main(["store", "merge", *parts, "--out", str(tmp_path / "merged.zarr")]) == 0
    assert "2 parts -> " in capsys.readouterr().out
    _same_store(out / "coco2017_val.zarr", tmp_path / "merged.zarr")
    assert main(["convert", "coco2017", "--root", str(root), "--out", str(out), "--part", "2/2"]) == 2
    assert "expected I/N" in capsys.readouterr().err


def test_merge_refusals(tmp_path):
    root = tmp_path / "coco"
    fx2.write_coco(root, "val")
    parts = [_convert("coco2017", root, tmp_path / "a", "val", part=(i, 2)) for i in range(2)]
    other = _convert("coco2017", root, tmp_path / "b", "val", part=(1, 2), min_keypoints=10)
    with pytest.raises(HmrError, match="part options unlike"):
        merge_parts([parts[0], other], tmp_path / "m.zarr")
    with pytest.raises(HmrError, match="parts 1/2 are missing"):
        merge_parts([parts[0]], tmp_path / "m.zarr")
    with pytest.raises(HmrError, match="given twice"):
        merge_parts([parts[0], parts[1], parts[1]], tmp_path / "m.zarr")
    three = _convert("coco2017", root, tmp_path / "c", "val", part=(1, 3))
    with pytest.raises(HmrError, match="part count unlike"):
        merge_parts([parts[0], three], tmp_path / "m.zarr")
    (parts[1].parent / (parts[1].name + ".manifest.json")).unlink()  # a run killed before its manifest
    with pytest.raises(HmrError, match="no output manifest") as err:
        merge_parts(parts, tmp_path / "m.zarr")
    assert str(parts[1]) in str(err.value)
    single = _convert("coco2017", root, tmp_path / "d", "val")
    with pytest.raises(HmrError, match="not a part store"):
        merge_parts([parts[0], single], tmp_path / "m.zarr")
    assert not (tmp_path / "m.zarr").exists()


def test_shard_parts_make_the_single_process_shard_set(tmp_path):
    """Two parts write alternate shards of one plan (real COCO images); the run without a part
    writes nothing but the index, which equals the single-process set's."""
    from loaders.shard import INDEX_NAME, ShardConfig, load_shard_set, shard_store
    from tests.fixtures.loaders import coco_store

    store = coco_store(tmp_path)
    single = shard_store(store, tmp_path / "one", ShardConfig(samples_per_shard=2), progress=False)
    out = tmp_path / "parts"
    with pytest.raises(HmrError, match="needs --samples-per-shard"):
        shard_store(store, out, ShardConfig(part=(0, 2)), progress=False)
    for i in range(2):
        set_dir = shard_store(store, out, ShardConfig(samples_per_shard=2, part=(i, 2)), progress=False)
        assert not (set_dir / INDEX_NAME).exists()
        if i == 0:  # part 0 of 2: shards 0, 2, ... only
            assert {int(p.name[6:12]) % 2 for p in set_dir.glob("shard-*.tar")} == {0}
    shards = sorted(p.name for p in set_dir.glob("shard-*.tar"))
    assert shards == sorted(p.name for p in single.glob("shard-*.tar")) and len(shards) >= 3
    shard_store(store, out, ShardConfig(samples_per_shard=2), progress=False)
    a, b = load_shard_set(single), load_shard_set(set_dir)
    assert a.shards == b.shards and a.num_samples == b.num_samples
    assert b.index["last_run"]["shards_written"] == 0  # every shard came from the parts


def test_merge_onto_an_existing_store(tmp_path):
    """Without --overwrite an existing store and its manifest stay; with it both are replaced."""
    root = tmp_path / "lsp"
    fx2.write_lsp(root, n=8)
    parts = [_convert("lsp", root, tmp_path / "p", "test", part=(i, 2)) for i in range(2)]
    single = _convert("lsp", root, tmp_path / "s", "test")
    out, manifest = merge_parts(parts, tmp_path / "m.zarr")
    before = manifest.read_text()
    with pytest.raises(FileExistsError):
        merge_parts(parts, out)
    assert manifest.read_text() == before and len(open_store(out)) == 4
    out, manifest = merge_parts(parts[::-1], out, overwrite=True, argv=["again"])
    assert json.loads(manifest.read_text())["argv"] == ["again"]
    _same_store(single, out)
    assert main(["store", "validate", str(out)]) == 0
