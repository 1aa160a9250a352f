"""hmr.core.schema.merge: part stores joined in single-process order, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.errors import SchemaError
from hmr.core.schema import StoreWriter, open_store
from hmr.core.schema.merge import check_parts, finish_part, merge_stores, parse_part, part_blocks, part_path

NUM_ITEMS, BLOCK = 11, 2  # blocks of records: [0,1] [2,3] [4,5] [6,7] [8,9] [10]


def _sample(i: int) -> dict:
    return {"image_path": f"img/{i:03d}.jpg", "image_hw": (40 + i, 50), "source_key": f"rec={i}",
            "frame_index": i, "bbox_xywh": (i, 1.0, 10.0, 12.0)}


def _write(path, rows: list[int], *, index: int, count: int, block_rows: list[int], num_items=NUM_ITEMS,
           dataset="lsp", complete=True, chunk_rows=4, **part_extra):
    info = {"index": index, "count": count, "block_items": BLOCK, "num_items": num_items,
            "block_rows": block_rows, "options": {"extra": {}}, **part_extra}
    w = StoreWriter(path, dataset=dataset, split="test", converter="converters.lsp", converter_version="1",
                    image_root="/raw", chunk_rows=chunk_rows)
    for i in rows:
        s = _sample(i)
        s["keypoints2d"] = np.full((w.num_keypoints, 3), [i, 2 * i, 1.0], np.float32)
        w.add(s)
    finish_part(w, info)
    if complete:
        w.close()
    else:
        w.finish()  # marked complete only under the partial name: never renamed into place
    return path


def _parts(tmp_path, count=3, dropped=(5,)):
    """The records 0..10 with ``dropped`` refused, cut into ``count`` parts as the driver does."""
    paths = []
    for p in range(count):
        rows, counts = [], []
        for b in part_blocks(p, count, NUM_ITEMS, BLOCK):
            kept = [i for i in range(b * BLOCK, min((b + 1) * BLOCK, NUM_ITEMS)) if i not in dropped]
            rows += kept
            counts.append(len(kept))
        paths.append(_write(part_path(tmp_path / "lsp_test.zarr", p, count), rows, index=p, count=count,
                            block_rows=counts))
    return paths


def test_parse_part_and_names(tmp_path):
    assert parse_part("3/8") == (3, 8)
    for bad in ("8/8", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(SchemaError, match="expected I/N"):
            parse_part(bad)
    assert part_path(tmp_path / "x_val.zarr", 2, 5).name == "x_val.part-2-of-5.zarr"
    assert list(part_blocks(1, 3, NUM_ITEMS, BLOCK)) == [1, 4]


@pytest.mark.parametrize("out_name", ["merged.zarr", "merged.npz"])
def test_merge_restores_the_record_order(tmp_path, out_name):
    paths = _parts(tmp_path)
    out = merge_stores(list(reversed(paths)), tmp_path / out_name)
    merged = open_store(out)
    expect = [i for i in range(NUM_ITEMS) if i != 5]
    assert list(merged.read("frame_index")) == expect
    assert list(merged.read("image_path")) == [f"img/{i:03d}.jpg" for i in expect]
    assert merged.read("keypoints2d")[:, 0, 1].tolist() == [2.0 * i for i in expect]
    assert "part" not in merged.attrs and merged.attrs["merged_from"] == [p.name for p in paths]
    assert merged.attrs["dataset"] == "lsp" and merged.validate() == len(expect)


def test_a_part_with_no_rows_is_merged(tmp_path):
    """5 parts of 6 blocks: part 4 holds block 4 only, all of whose records were refused."""
    paths = _parts(tmp_path, count=5, dropped=(8, 9))
    assert len(open_store(paths[3])) == 2 and len(open_store(paths[4])) == 0
    merged = open_store(merge_stores(paths, tmp_path / "m.zarr"))
    assert list(merged.read("frame_index")) == [i for i in range(NUM_ITEMS) if i not in (8, 9)]


def test_missing_and_duplicated_parts_are_refused(tmp_path):
    paths = _parts(tmp_path)
    with pytest.raises(SchemaError, match="parts 1/3 are missing"):
        check_parts([paths[0], paths[2]])
    with pytest.raises(SchemaError, match="part 2/3 is given twice") as err:
        check_parts([*paths, paths[2]])
    assert str(paths[2]) in str(err.value)
    with pytest.raises(SchemaError, match="no part stores"):
        check_parts([])


def test_parts_of_different_conversions_are_refused(tmp_path):
    paths = _parts(tmp_path)
    other = _write(tmp_path / "other.zarr", [2, 3, 8, 9], index=1, count=3, block_rows=[2, 2], dataset="lspet")
    with pytest.raises(SchemaError, match="dataset is 'lspet'") as err:
        check_parts([paths[0], other, paths[2]])
    assert "other.zarr" in str(err.value)
    opts = _write(tmp_path / "opts.zarr", [2, 3, 8, 9], index=1, count=3, block_rows=[2, 2],
                  options={"extra": {"min_keypoints": "3"}})
    with pytest.raises(SchemaError, match="part options unlike"):
        check_parts([paths[0], opts, paths[2]])
    items = _write(tmp_path / "items.zarr", [2, 3, 8, 9], index=1, count=3, block_rows=[2, 2], num_items=12)
    with pytest.raises(SchemaError, match="different number of records"):
        check_parts([paths[0], items, paths[2]])


def test_incomplete_damaged_and_plain_stores_are_refused(tmp_path):
    paths = _parts(tmp_path)
    _write(tmp_path / "half.zarr", [2, 3, 8, 9], index=1, count=3, block_rows=[2, 2], complete=False)
    with pytest.raises((SchemaError, FileNotFoundError), match="half.zarr"):
        check_parts([paths[0], tmp_path / "half.zarr", paths[2]])
    damaged = _write(tmp_path / "damaged.zarr", [2, 3, 8, 9], index=1, count=3, block_rows=[2, 1])
    with pytest.raises(SchemaError, match="damaged"):
        check_parts([paths[0], damaged, paths[2]])
    w = StoreWriter(tmp_path / "plain.zarr", dataset="lsp", split="test", converter="converters.lsp",
                    converter_version="1", image_root="/raw")
    w.add({"image_path": "a.jpg", "image_hw": (4, 4), "bbox_xywh": (0.0, 0.0, 2.0, 2.0)})
    w.close()
    with pytest.raises(SchemaError, match="is not a part store"):
        check_parts([tmp_path / "plain.zarr"])
