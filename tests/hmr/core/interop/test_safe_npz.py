"""Pickle-safe npz reading: plain arrays, dict-valued object arrays, refused exploits."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from hmr.core.errors import DatasetFormatError, UnsafePickleError
from hmr.core.interop.safe_npz import SafeNpz
from tests.fixtures.interop import humandata_items, write_humandata, write_malicious_humandata


def test_plain_and_object_members_read_back(tmp_path):
    items = humandata_items(4)
    path = write_humandata(tmp_path / "hd.npz", items, compressed=False)
    with SafeNpz(path) as npz:
        assert "smpl" in npz and "image_path" in npz
        np.testing.assert_array_equal(npz["keypoints2d"], items["keypoints2d"])
        assert npz["keypoints2d"].dtype == np.float64
        smpl = npz["smpl"]  # a 0-d object array unwrapped to its dict
        assert isinstance(smpl, dict)
        np.testing.assert_array_equal(smpl["body_pose"], items["smpl"]["body_pose"])
        cams = npz["cam_param"]  # (N,) object array of dicts
        assert cams.shape == (4,) and cams[3]["in_mat"] == items["cam_param"][3]["in_mat"]
        assert str(npz["config"]) == "pw3d"
        assert int(npz["__data_len__"]) == 4 and bool(npz["__keypoints_compressed__"]) is False


def test_pickled_os_system_is_refused_naming_file_and_key(tmp_path, capfd):
    path = write_malicious_humandata(tmp_path / "evil.npz", key="meta")
    with SafeNpz(path) as npz:
        assert npz["bbox_xywh"].shape == (3, 5)  # plain keys still readable
        with pytest.raises(UnsafePickleError) as err:
            npz["meta"]
    assert "evil.npz" in str(err.value) and "'meta'" in str(err.value)
    assert "system" in str(err.value)
    assert "pwned" not in capfd.readouterr().out  # nothing ran


def test_truncated_member_and_non_zip_are_format_errors(tmp_path):
    path = write_humandata(tmp_path / "hd.npz", humandata_items(3), compressed=False)
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("keypoints2d.npy")
    cut = tmp_path / "cut.npz"
    with zipfile.ZipFile(cut, "w") as zf:
        zf.writestr("keypoints2d.npy", raw[: len(raw) // 2])
    with SafeNpz(cut) as npz, pytest.raises(DatasetFormatError, match="keypoints2d"):
        npz["keypoints2d"]
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DatasetFormatError, match="junk.npz"):
        SafeNpz(junk)
    with pytest.raises(DatasetFormatError, match="missing"):
        SafeNpz(tmp_path / "absent.npz")


def test_importers_never_call_np_load_with_allow_pickle(tmp_path, monkeypatch):
    from hmr.core.interop import read_humandata, read_spin_npz
    from tests.fixtures.interop import spin_arrays, write_spin_npz

    hd = write_humandata(tmp_path / "hd.npz", humandata_items(3))
    spin = write_spin_npz(tmp_path / "spin.npz", spin_arrays(3))
    real_load = np.load

    def guarded(*args, **kwargs):
        assert not kwargs.get("allow_pickle"), "np.load(allow_pickle=True) on a user file"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", guarded)
    assert len(read_humandata(hd)) == 3
    assert len(read_spin_npz(spin)) == 3
