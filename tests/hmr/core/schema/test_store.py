import json
import os
import zipfile

import numpy as np
import pytest

from hmr.core.errors import SchemaError
from hmr.core.schema import FIELD_NAMES, StoreWriter, copy_store, open_store
from tests.fixtures.schema import WRITER_ARGS, random_columns


def write(path, cols, **kw):
    with StoreWriter(path, **WRITER_ARGS, **kw) as w:
        w.add_columns(cols)
    return path


def assert_same_content(a, b):
    assert len(a) == len(b)
    assert a.fields == b.fields
    for f in a.fields:
        x, y = a.read(f), b.read(f)
        if x.dtype.kind == "O":
            assert list(x) == list(y), f
        else:
            assert x.dtype == y.dtype, f
            np.testing.assert_array_equal(x, y, err_msg=f)
    strip = lambda attrs: {k: v for k, v in attrs.items() if k != "created"}
    assert strip(a.attrs) == strip(b.attrs)
    assert a.attrs["created"] == b.attrs["created"]


def test_zarr_npz_round_trip_is_lossless(tmp_path):
    cols = random_columns(2500, seed=1)
    cols["extra_fit_error"] = np.linspace(0, 1, 2500).astype(np.float32)
    z = open_store(write(tmp_path / "a.zarr", cols, chunk_rows=512))
    n = open_store(copy_store(z.path, tmp_path / "a.npz"))
    z2 = open_store(copy_store(n.path, tmp_path / "b.zarr"))
    assert_same_content(z, n)
    assert_same_content(z, z2)
    # the values are the ones written
    np.testing.assert_array_equal(z.read("keypoints2d"), cols["keypoints2d"])
    assert list(n.read("image_path")) == list(cols["image_path"])
    np.testing.assert_array_equal(n.read("extra_fit_error"), cols["extra_fit_error"])


def test_npz_holds_no_pickles_and_attrs_as_json(tmp_path):
    path = write(tmp_path / "a.npz", random_columns(10))
    with np.load(path, allow_pickle=False) as data:
        assert set(FIELD_NAMES) <= set(data.files)
        attrs = json.loads(str(data["__attrs__"]))
    assert attrs["complete"] is True and attrs["num_samples"] == 10
    assert attrs["dataset"] == "testset" and attrs["schema_version"] == 1


def test_sample_access_matches_columns(tmp_path):
    cols = random_columns(300, seed=2)
    store = open_store(write(tmp_path / "a.zarr", cols, chunk_rows=64))
    s = store[201]
    assert s["image_path"] == cols["image_path"][201]
    np.testing.assert_array_equal(s["smpl_body_pose"], cols["smpl_body_pose"][201])
    assert s["frame_index"] == 201
    assert store[-1]["source_key"] == cols["source_key"][-1]
    with pytest.raises(IndexError):
        store[300]


def test_zarr_is_chunked_along_samples_and_read_lazily(tmp_path):
    cols = random_columns(1000, seed=3)
    path = write(tmp_path / "a.zarr", cols, chunk_rows=100)
    chunk_files = sorted(os.listdir(path / "keypoints2d"))
    assert [f for f in chunk_files if not f.startswith(".")] == [f"{i}.0.0" for i in range(10)]
    # Garble every chunk but the first: sample 7 must still read correctly, which shows
    # that reading it touches one chunk per field, not the whole store; a garbled chunk is
    # reported with its field and file, never read back as zeros.
    for field_dir in path.iterdir():
        if field_dir.is_dir():
            for chunk in field_dir.iterdir():
                if not chunk.name.startswith(".") and not chunk.name.startswith("0"):
                    chunk.write_bytes(b"not a blosc chunk")
    store = open_store(path)
    np.testing.assert_array_equal(store[7]["keypoints3d"], cols["keypoints3d"][7])
    with pytest.raises(SchemaError, match=r"keypoints3d/9\.0\.0"):
        store.read("keypoints3d", 900, 901)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "a.zarr"
    with pytest.raises(RuntimeError):
        with StoreWriter(target, **WRITER_ARGS, chunk_rows=10) as w:
            w.add_columns(random_columns(25))
            raise RuntimeError("converter crashed")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_previous_store(tmp_path):
    target = write(tmp_path / "a.npz", random_columns(5))
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with StoreWriter(target, **WRITER_ARGS, overwrite=True) as w:
            w.add_columns(random_columns(8))
            raise RuntimeError("boom")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_existing_store_needs_overwrite(tmp_path):
    target = write(tmp_path / "a.zarr", random_columns(5))
    with pytest.raises(FileExistsError):
        StoreWriter(target, **WRITER_ARGS)
    write(target, random_columns(7), overwrite=True)
    assert len(open_store(target)) == 7


def test_stale_partial_from_killed_run_is_removed(tmp_path):
    stale = tmp_path / "a.zarr.partial-99999"
    stale.mkdir()
    (stale / "junk").write_text("x")
    write(tmp_path / "a.zarr", random_columns(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]


def test_incomplete_store_is_refused(tmp_path):
    import zarr

    path = write(tmp_path / "a.zarr", random_columns(20), chunk_rows=8)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["complete"] = False
    with pytest.raises(SchemaError, match="incomplete"):
        open_store(path)
    group.attrs.update({"complete": True, "num_samples": 30})
    with pytest.raises(SchemaError, match="declares 30"):
        open_store(path)


def test_truncated_npz_is_refused(tmp_path):
    path = write(tmp_path / "a.npz", random_columns(50))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SchemaError, match="not a schema npz"):
        open_store(path)


def test_add_single_samples_fills_defaults(tmp_path):
    with StoreWriter(tmp_path / "a.zarr", **WRITER_ARGS, chunk_rows=4) as w:
        for i in range(10):
            w.add({"image_path": f"x/{i}.jpg", "image_hw": (480, 640), "bbox_xywh": (0, 0, 10, 20),
                   "person_id": i})
    store = open_store(tmp_path / "a.zarr")
    assert len(store) == 10
    s = store[9]
    assert s["person_id"] == 9 and s["frame_index"] == -1 and s["subject_id"] == ""
    assert not s["has_smpl"] and s["smpl_source"] == 0
    assert s["keypoints2d"].shape == (store.num_keypoints, 3) and not s["keypoints2d"].any()


def test_int_columns_are_cast_only_when_lossless(tmp_path):
    cols = random_columns(4)
    cols["image_hw"] = cols["image_hw"].astype(np.int64)
    write(tmp_path / "ok.zarr", cols)
    cols["frame_index"] = np.array([1, 2, 2**40, 3], dtype=np.int64)
    with pytest.raises(SchemaError, match=r"field 'frame_index', sample 2"):
        write(tmp_path / "bad.zarr", cols)


def test_npz_members_are_plain_arrays(tmp_path):
    path = write(tmp_path / "a.npz", random_columns(3))
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert "__attrs__.npy" in names and "keypoints2d.npy" in names
