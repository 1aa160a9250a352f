"""Hostile or broken raw files are errors naming the file and the record or field, with the
CLI's normal error exit, never an "internal error" (issue 21, items 1, 4 and 5).

Each fixture is the real raw format (the same writers as the converter tests), then broken
the way the outside tester broke it."""

from __future__ import annotations

import pickle
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from cli.main import main
from converters import h36m
from converters.readers import image_size_hw, read_json
from hmr.core.errors import DatasetFormatError
from hmr.core.geometry import procrustes_align
from tests.fixtures import converters_3d as fx3
from tests.fixtures.converters_2d import (
    convert,
    write_lsp,
    write_mpii_h5,
    write_spin_fits,
    write_spin_npz,
)

NESTING_BOMB = "[" * 100_000 + "]" * 100_000


def _cli(capsys, *argv):
    code = main([*argv])
    err = capsys.readouterr().err
    assert "internal error" not in err, err
    return code, err


def _claim_jpeg_size(path, height: int, width: int) -> None:
    """Rewrite the SOF0 frame header of a baseline JPEG to claim ``height`` x ``width``."""
    data = bytearray(path.read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- LSP + images
def test_a_truncated_joints_mat_names_the_file(tmp_path, capsys):
    write_lsp(tmp_path / "lsp", n=4)
    mat = tmp_path / "lsp" / "joints.mat"
    mat.write_bytes(mat.read_bytes()[:100])
    code, err = _cli(capsys, "convert", "lsp", "--root", str(tmp_path / "lsp"), "--out", str(tmp_path / "out"),
                     "--split", "train")
    assert code == 2 and "joints.mat" in err and "truncated" in err


def _break_joints_mat(data: bytes, how: str) -> bytes:
    """LSP's joints.mat (scipy writes it uncompressed: header, one miMATRIX) broken in a way
    that made scipy's reader crash the process (segmentation fault) instead of raising."""
    out = bytearray(data)
    name = data.find(b"joints")  # the name sub-element's data; its tag is the 8 bytes before
    if how == "name_length":
        out[name - 4:name] = struct.pack("<I", 124)  # 'joints' claims 124 bytes
    elif how == "unknown_type":
        out[name + 8:name + 12] = struct.pack("<I", 0x1F09)  # the real part's tag: type 7945
    else:  # "complex_without_imaginary": the array-flags word of the one miMATRIX
        out[145] |= 0x08
    return bytes(out)


@pytest.mark.parametrize("how", ["name_length", "unknown_type", "complex_without_imaginary"])
def test_a_mat_file_that_crashed_scipy_is_an_error_naming_it(tmp_path, how):
    write_lsp(tmp_path / "lsp", n=2)
    mat = tmp_path / "lsp" / "joints.mat"
    assert mat.read_bytes()[140:148] == struct.pack("<II", 8, 6)  # the flags sub-element: 8 bytes, class 6
    mat.write_bytes(_break_joints_mat(mat.read_bytes(), how))
    code = ("import sys\nfrom pathlib import Path\nfrom converters.readers import read_mat\n"
            "from hmr.core.errors import DatasetFormatError\n"
            f"try:\n    read_mat(Path({str(mat)!r}))\nexcept DatasetFormatError as exc:\n    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, f"crashed with {run.returncode}: {run.stderr[-300:]}"
    assert str(mat) in run.stdout and "corrupt .mat file" in run.stdout


def test_joints_that_are_not_numbers_name_the_file_and_variable(tmp_path):
    write_lsp(tmp_path / "lsp", n=2)
    mat = tmp_path / "lsp" / "joints.mat"
    scipy.io.savemat(str(mat), {"joints": np.array([["x", "y"]], dtype=object)})
    with pytest.raises(DatasetFormatError, match="not a numeric array") as err:
        convert("lsp", tmp_path / "lsp", tmp_path / "out", "train")
    assert (err.value.path, err.value.record) == (str(mat), "joints")


def test_an_image_header_claiming_a_huge_size_is_a_bad_record(tmp_path):
    write_lsp(tmp_path / "lsp", n=4)
    image = tmp_path / "lsp" / "images" / "im0002.jpg"
    _claim_jpeg_size(image, 8187, 65500)
    with pytest.raises(DatasetFormatError, match="65500\u00d78187") as err:
        image_size_hw(image)
    assert err.value.path == str(image)
    result, store = convert("lsp", tmp_path / "lsp", tmp_path / "out", "train", skip_bad=True)
    assert len(store) == 1 and [(s.path, s.record) for s in result.skipped] == [(str(image), "joints.mat[1]")]


def test_an_image_over_our_limit_but_under_pils_names_its_size(tmp_path):
    write_lsp(tmp_path / "lsp", n=2)
    image = tmp_path / "lsp" / "images" / "im0001.jpg"
    _claim_jpeg_size(image, 100, 30000)
    with pytest.raises(DatasetFormatError, match="30000\u00d7100"):
        image_size_hw(image)


# --------------------------------------------------------------------------- 3DPW
def _pw3d(tmp_path, **changes):
    root = tmp_path / "pw3d"
    data = fx3.write_pw3d_sequence(root, "test", "seq", 3, np.random.default_rng(0), genders=("m",))
    data.update(changes)
    pkl = root / "sequenceFiles" / "test" / "seq.pkl"
    fx3.write_py2_pickle(pkl, data)
    return root, pkl, data


@pytest.mark.parametrize(("change", "record", "why"), [
    ({"betas": [np.zeros(5)]}, "person 0", "'betas' holds 5 values"),
    ({"cam_poses": np.float64(2.0)}, "cam_poses", "expected \\(T, 4, 4\\)"),
])
def test_pw3d_structure_errors_name_the_file_and_record(tmp_path, change, record, why):
    root, pkl, _ = _pw3d(tmp_path, **change)
    with pytest.raises(DatasetFormatError, match=why) as err:
        convert("pw3d", root, tmp_path / "out", "test")
    assert err.value.path == str(pkl) and err.value.record == record


@pytest.mark.parametrize("broken", ["scaled", "mirrored", "nan"])
def test_pw3d_camera_poses_that_are_not_rigid_are_bad_records(tmp_path, broken):
    """A non-rigid camera would be stored as is, a NaN one stopped the run with 'SVD did not
    converge': both become bad records of their frame, the other frames convert."""
    cams = fx3.pw3d_camera_poses(3, np.random.default_rng(1))
    if broken == "scaled":
        cams[1, :3, :3] *= 2.0
    elif broken == "mirrored":
        cams[1, :3, 0] *= -1.0
    else:
        cams[1, :3, :3] = np.nan
    root, _, _ = _pw3d(tmp_path, cam_poses=cams)
    result, store = convert("pw3d", root, tmp_path / "out", "test", skip_bad=True)
    assert len(store) == 2
    assert [(s.record, "not a rigid transform" in s.message) for s in result.skipped] == [("person 0 frame 1", True)]


# --------------------------------------------------------------------------- H36M cameras
@pytest.mark.parametrize("broken", ["nan_focal", "nan_rotation", "scaled_rotation"])
def test_h36m_cameras_that_cannot_be_used_name_the_file_and_camera(tmp_path, broken):
    """The real cameras.pkl with one calibration broken: refused when read, naming it (a NaN
    camera used to stop the conversion in a least-squares SVD, naming nothing)."""
    cams = fx3.h36m_real_cameras()
    key = ("S1", "54138969")
    entry = cams[key]
    if broken == "nan_focal":
        entry["f"] = np.full_like(np.asarray(entry["f"], float), np.nan)
    elif broken == "nan_rotation":
        entry["R"] = np.full((3, 3), np.nan)
    else:
        entry["R"] = 2.0 * np.asarray(entry["R"], float)
    path = tmp_path / "cameras.pkl"
    path.write_bytes(pickle.dumps(cams))
    with pytest.raises(DatasetFormatError, match="camera S1/54138969") as err:
        h36m.load_cameras(path)
    assert (err.value.path, err.value.record) == (str(path), key)
    assert len(h36m.load_cameras(fx3.H36M_REAL / "cameras.pkl")) == 44  # the real file passes


def test_3dhp_nan_annotations_do_not_stop_the_camera_fit(tmp_path):
    """A test sequence whose annot_data.mat holds NaN in one valid frame: the intrinsics are
    fitted from the other frames and the NaN frame is a bad record naming its sequence."""
    root = tmp_path / "3dhp"
    fx3.write_3dhp_test_sequence(root, "TS1", np.array([1, 1, 1, 1]), np.random.default_rng(5))
    with h5py.File(root / "mpi_inf_3dhp_test_set" / "TS1" / "annot_data.mat", "a") as f:
        annot2 = f["annot2"][()]
        annot2[2, 0, 3, 0] = np.nan
        f["annot2"][...] = annot2
    result, store = convert("mpi_inf_3dhp", root, tmp_path / "out", "test", skip_bad=True, subjects="TS1")
    assert len(store) == 3 and len(result.skipped) == 1 and "TS1" in f"{result.skipped[0]}"


# --------------------------------------------------------------------------- MPII
def test_mpii_h5_arrays_of_unequal_length_name_the_dataset(tmp_path, capsys):
    write_mpii_h5(tmp_path / "mpii")
    h5 = tmp_path / "mpii" / "annot" / "train.h5"
    with h5py.File(h5, "a") as f:
        center = f["center"][:3]
        del f["center"]
        f.create_dataset("center", data=center)
    code, err = _cli(capsys, "convert", "mpii", "--root", str(tmp_path / "mpii"), "--out", str(tmp_path / "out"),
                     "--split", "train")
    assert code == 2 and str(h5) in err and "record center" in err and "3 rows" in err


def test_mpii_h5_odd_objects_and_names_are_named(tmp_path):
    """A committed datatype where a dataset belongs, and an image name that is not UTF-8."""
    write_mpii_h5(tmp_path / "mpii")
    h5 = tmp_path / "mpii" / "annot" / "train.h5"
    with h5py.File(h5, "a") as f:
        names = f["imgname"][()]
        names[1] = b"\x99bad.jpg"
        f["imgname"][...] = names
    result, store = convert("mpii", tmp_path / "mpii", tmp_path / "out", "train", skip_bad=True)
    assert [(s.path, s.record) for s in result.skipped] == [(str(h5), "train.h5[1]")] and len(store) == 3
    with h5py.File(h5, "a") as f:
        del f["visible"]
        f["visible"] = np.dtype("f8")  # a named datatype, not a dataset
    with pytest.raises(DatasetFormatError, match="corrupt HDF5") as err:
        convert("mpii", tmp_path / "mpii", tmp_path / "out2", "train")
    assert err.value.path == str(h5)


def test_mpii_json_nesting_bomb_names_the_file(tmp_path, capsys):
    (tmp_path / "mpii" / "annotations").mkdir(parents=True)
    bomb = tmp_path / "mpii" / "annotations" / "mpii_train.json"
    bomb.write_text(NESTING_BOMB)
    with pytest.raises(DatasetFormatError, match="nested too deeply") as err:
        read_json(bomb)
    assert err.value.path == str(bomb)
    code, err_text = _cli(capsys, "convert", "mpii", "--root", str(tmp_path / "mpii"), "--out", str(tmp_path / "o"),
                          "--split", "train", "-o", "flavour=json")
    assert code == 2 and str(bomb) in err_text


# --------------------------------------------------------------------------- npz
def _corrupt_member(archive, member: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size - 5] ^= 0xFF
    archive.write_bytes(bytes(data))


def _spin(tmp_path):
    root = tmp_path / "spin_data"
    write_spin_npz(root, "coco_2014_train.npz", tmp_path / "coco", n=5)
    write_spin_fits(root, "coco_fits.npy", n=5)
    return root, root / "dataset_extras" / "coco_2014_train.npz"


def test_an_npz_member_with_a_bad_crc_names_the_file_and_member(tmp_path):
    root, npz = _spin(tmp_path)
    _corrupt_member(npz, "center.npy")
    for name, split in (("spin_fits", "coco"), ("spin_npz", "coco_2014_train")):
        options = {"file": str(npz)} if name == "spin_npz" else {}
        with pytest.raises(DatasetFormatError, match="CRC") as err:
            convert(name, root, tmp_path / f"out-{name}", split, **options)
        assert (err.value.path, err.value.record) == (str(npz), "center")


def _rewrite_member(archive, member: str, data: bytes, method: int = zipfile.ZIP_STORED) -> None:
    """Replace ``member`` of a stored (uncompressed) npz, then mark it with compression ``method``."""
    with zipfile.ZipFile(archive) as src:
        items = [(info.filename, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(archive, "w") as dst:
        for name, body in items:
            dst.writestr(name, data if name == member else body)
    if method != zipfile.ZIP_STORED:  # the method field of the local header and the directory entry
        raw = bytearray(archive.read_bytes())
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
        raw[info.header_offset + 8:info.header_offset + 10] = struct.pack("<H", method)
        central = next(m.start() for m in re.finditer(b"PK\x01\x02", raw)
                       if struct.unpack_from("<I", raw, m.start() + 42)[0] == info.header_offset)
        raw[central + 10:central + 12] = struct.pack("<H", method)
        archive.write_bytes(bytes(raw))


@pytest.mark.parametrize("broken", ["compression_method", "npy_header"])
def test_an_npz_member_zipfile_or_numpy_cannot_read_names_the_member(tmp_path, broken):
    root, npz = _spin(tmp_path)
    with zipfile.ZipFile(npz) as zf:
        body = zf.read("center.npy")
    if broken == "compression_method":
        _rewrite_member(npz, "center.npy", body, method=99)
    else:  # the header dict cut short, its length field kept consistent
        header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (5, 2" + b" " * 10 + b"\n"
        _rewrite_member(npz, "center.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(DatasetFormatError) as err:
        convert("spin_npz", root, tmp_path / "out", "coco_2014_train", file=str(npz))
    assert (err.value.path, err.value.record) == (str(npz), "center")


def test_an_object_array_where_numbers_belong_names_the_file_and_member(tmp_path):
    root, npz = _spin(tmp_path)
    arrays = dict(np.load(npz))
    arrays["center"] = np.array([[1.0, 2.0]] * 4 + [None], dtype=object)
    np.savez(npz, **arrays)
    with pytest.raises(DatasetFormatError, match="center") as err:
        convert("spin_fits", root, tmp_path / "out", "coco")
    assert (err.value.path, err.value.record) == (str(npz), "center")


# --------------------------------------------------------------------------- evaluation
def test_a_non_finite_sample_does_not_stop_procrustes_for_the_batch():
    rng = torch.Generator().manual_seed(0)
    pred = torch.randn(4, 14, 3, generator=rng, dtype=torch.float64)
    gt = torch.randn(4, 14, 3, generator=rng, dtype=torch.float64)
    pred[2, 5] = float("nan")
    aligned = procrustes_align(pred, gt)
    assert aligned[2].isnan().all() and torch.isfinite(aligned[[0, 1, 3]]).all()
    torch.testing.assert_close(aligned[[0, 1, 3]], procrustes_align(pred[[0, 1, 3]], gt[[0, 1, 3]]))
    mask = torch.ones(4, 14)
    mask[2, 5] = 0  # the NaN joint is masked out: the sample aligns on the others
    assert torch.isfinite(procrustes_align(pred, gt, mask)[2, torch.arange(14) != 5]).all()


# --------------------------------------------------------------------------- CLI arguments
@pytest.mark.parametrize("box", ["nan,0,10,10", "0,0,inf,10", "0,0,10,0"])
def test_predict_refuses_a_non_finite_or_empty_box(tmp_path, capsys, box):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(tmp_path / "x.pt"), str(tmp_path / "x.jpg"), "--bbox", box])
    assert exit_.value.code == 2 and "--bbox" in capsys.readouterr().err


def test_convert_refuses_undeclared_and_malformed_options(tmp_path, capsys):
    write_lsp(tmp_path / "lsp", n=2)
    base = ["convert", "mpii", "--root", str(tmp_path / "lsp"), "--out", str(tmp_path / "o"), "--split", "train"]
    code, err = _cli(capsys, *base, "-o", "flavor=json")
    assert code == 2 and "no option 'flavor'" in err and "flavour" in err and "min_keypoints" in err
    code, err = _cli(capsys, *base, "-o", "flavour")
    assert code == 2 and "-o 'flavour': expected KEY=VALUE" in err
