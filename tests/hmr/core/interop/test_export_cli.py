"""`hmr export`: store -> SPIN / HumanData npz from the command line, errors as one line."""

from __future__ import annotations

import numpy as np

from cli.main import main
from hmr.core.interop.safe_npz import SafeNpz
from tests.fixtures.interop import export_store


def test_export_both_formats(tmp_path, capsys):
    store = export_store(tmp_path / "s.zarr", n=4)
    assert main(["export", str(store), "--to", "spin", "--out", str(tmp_path / "spin.npz")]) == 0
    assert "4 samples" in capsys.readouterr().out
    assert np.load(tmp_path / "spin.npz")["part"].shape == (4, 24, 3)
    assert main(["export", str(store), "--to", "humandata", "--out", str(tmp_path / "hd.npz")]) == 0
    with SafeNpz(tmp_path / "hd.npz") as npz:
        assert int(npz["__data_len__"]) == 4 and npz["smpl"]["betas"].shape == (4, 10)


def test_existing_output_and_missing_store_fail_cleanly(tmp_path, capsys):
    store = export_store(tmp_path / "s.zarr", n=2)
    out = tmp_path / "spin.npz"
    out.write_bytes(b"keep me")
    assert main(["export", str(store), "--to", "spin", "--out", str(out), "--no-overwrite"]) != 0
    assert out.read_bytes() == b"keep me"
    assert main(["export", str(tmp_path / "nope.zarr"), "--to", "spin", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "nope.zarr" in err and "Traceback" not in err
    assert not list(tmp_path.glob("spin.npz.partial-*"))
