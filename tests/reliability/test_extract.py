"""``hmr extract`` leaves nothing behind when it fails part-way: a zip member with a bad
CRC, a symlink chain the tar data filter stops, a full disk (issue 21, item 7). Members are
written into a temporary folder inside the destination and moved into place once complete."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from cli.main import main as hmr_main
from hmr.core.errors import DatasetFormatError, UnsafeArchiveError
from hmr.core.utils.archive import safe_extract
from tests.fixtures.manifests import make_tar, make_zip


def _tree(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) if path.exists() else []


def _flip_last_data_byte(archive, member: str) -> None:
    """Corrupt the stored bytes of ``member`` so that reading it fails its CRC check."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size - 1] ^= 0xFF
    archive.write_bytes(bytes(data))


def test_a_crc_error_part_way_leaves_the_destination_as_it_was(tmp_path):
    arc = make_zip(tmp_path / "ann.zip", [("file", "ann/a.json", b"{}" * 50), ("file", "ann/b.json", b"[]" * 50),
                                          ("file", "ann/c.json", b"{}")])
    _flip_last_data_byte(arc, "ann/b.json")  # a.json is complete before b.json fails
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "kept.txt").write_text("already here")
    with pytest.raises(DatasetFormatError, match="CRC") as err:
        safe_extract(arc, dest, progress=False)
    assert err.value.path == str(arc)
    assert _tree(dest) == ["kept.txt"]


def test_a_symlink_chain_stopped_mid_way_leaves_nothing(tmp_path):
    """Each link looks inside on its own (the member list check passes); resolved one through
    the other, ``sub/l2`` points above the target, and tar's data filter stops there."""
    arc = make_tar(tmp_path / "chain.tar", [
        ("file", "first.txt", b"written before the refusal"),
        ("symlink", "sub/l1", ".."), ("symlink", "sub/l2", "l1/.."), ("file", "z.txt", b"after"),
    ])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="sub/l2"):
        safe_extract(arc, dest, progress=False)
    assert not dest.exists()


def test_a_full_disk_leaves_nothing_and_is_one_line(tmp_path):
    """The file-size limit makes the second member's write fail as a full disk does (EFBIG
    instead of ENOSPC): a real failed write, in a child process."""
    arc = make_zip(tmp_path / "big.zip", [("file", "small.bin", b"s" * 1000),
                                          ("file", "big.bin", os.urandom(3 << 20))])
    dest = tmp_path / "out"
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
            "from cli.main import main\n"
            f"sys.exit(main(['extract', {str(arc)!r}, {str(dest)!r}, '--no-progress']))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert run.returncode == 2, run.stderr
    assert "internal error" not in run.stderr and "nothing was kept" in run.stderr
    assert _tree(dest) == []


def test_extracting_into_a_folder_merges_and_leaves_no_temporary_folder(tmp_path):
    dest = tmp_path / "coco"
    (dest / "annotations").mkdir(parents=True)
    (dest / "annotations" / "old.json").write_text("{}")
    arc = make_zip(tmp_path / "ann.zip", [("file", "annotations/new.json", b"[]"), ("file", "README", b"r")])
    assert hmr_main(["extract", str(arc), str(dest), "--no-progress"]) == 0
    assert _tree(dest) == ["README", "annotations", "annotations/new.json", "annotations/old.json"]


def test_a_killed_extractions_temporary_folder_is_removed_by_the_next(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dest = tmp_path / "data"
    leftover = dest / f".ann.zip.extracting-{int(dead.stdout)}-x1y2"
    (leftover / "ann").mkdir(parents=True)
    (leftover / "ann" / "half.json").write_text("{")
    arc = make_zip(tmp_path / "ann.zip", [("file", "ann/a.json", b"{}")])
    safe_extract(arc, dest, progress=False)
    assert _tree(dest) == ["ann", "ann/a.json"]
