"""Import and export stream in row blocks: block boundaries must not change any value."""

from __future__ import annotations

import numpy as np

from hmr.core.interop import export_humandata, export_spin_npz
from hmr.core.interop.humandata import iter_humandata, read_humandata
from hmr.core.interop.safe_npz import SafeNpz
from hmr.core.interop.spin_npz import iter_spin_npz, read_spin_npz
from tests.fixtures.interop import (
    export_store, humandata_items, spin_arrays, write_humandata, write_spin_npz,
)


def test_member_blocks_concatenate_to_the_member(tmp_path):
    items = humandata_items(7)
    path = write_humandata(tmp_path / "hd.npz", items)
    with SafeNpz(path) as npz:
        for key in ("keypoints2d", "bbox_xywh", "image_path", "cam_param"):
            blocks = list(npz.blocks(key, 3))
            assert [len(b) for b in blocks] == [3, 3, 1]
            whole = npz[key]
            if key == "cam_param":
                assert [c["in_mat"] for b in blocks for c in b] == [c["in_mat"] for c in whole]
            else:
                np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_spin_blocks_equal_the_whole_file(tmp_path):
    path = write_spin_npz(tmp_path / "s.npz", spin_arrays(7, gender=True))
    whole = read_spin_npz(path)
    blocks = list(iter_spin_npz(path, rows=3))
    assert [b.offset for b in blocks] == [0, 3, 6]
    for name in ("center", "scale", "keypoints2d", "keypoints3d", "pose", "betas", "has_smpl", "gender"):
        joined = np.concatenate([getattr(b, name) for b in blocks])
        np.testing.assert_array_equal(joined, getattr(whole, name), err_msg=name)
    assert list(np.concatenate([b.imgname for b in blocks])) == list(whole.imgname)


def test_humandata_blocks_equal_the_whole_file(tmp_path):
    path = write_humandata(tmp_path / "hd.npz", humandata_items(7))
    whole = read_humandata(path)
    blocks = list(iter_humandata(path, rows=3))
    assert [b.offset for b in blocks] == [0, 3, 6]
    for name in ("bbox_xywh", "keypoints2d", "keypoints3d", "has_smpl", "gender"):
        joined = np.concatenate([getattr(b, name) for b in blocks])
        np.testing.assert_array_equal(joined, getattr(whole, name), err_msg=name)
    for key in whole.smpl:
        np.testing.assert_array_equal(np.concatenate([b.smpl[key] for b in blocks]), whole.smpl[key])
    cams = [c for b in blocks for c in b.cameras]
    np.testing.assert_array_equal([c.intrinsics for c in cams], [c.intrinsics for c in whole.cameras])


def test_export_is_independent_of_store_chunking(tmp_path):
    one = export_store(tmp_path / "one.zarr", n=7)
    many = export_store(tmp_path / "many.zarr", n=7, chunk_rows=2)
    for export, name in ((export_spin_npz, "spin"), (export_humandata, "hd")):
        a = export(one, tmp_path / f"{name}_one.npz")
        b = export(many, tmp_path / f"{name}_many.npz")
        with SafeNpz(a) as x, SafeNpz(b) as y:
            assert x.keys() == y.keys()
            for key in x.keys():
                if isinstance(x[key], np.ndarray) and x[key].dtype.kind != "O":
                    np.testing.assert_array_equal(x[key], y[key], err_msg=key)
            if name == "hd":
                np.testing.assert_array_equal(x["smpl"]["betas"], y["smpl"]["betas"])
