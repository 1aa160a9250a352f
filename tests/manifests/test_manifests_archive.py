"""``hmr.core.utils.archive.safe_extract`` refuses every escaping member before writing anything.

(Tests of ``hmr/core/utils/archive.py`` live here because extraction belongs to the manifest
workflow: ``hmr extract`` and ``hmr verify --extract``.)
"""

from __future__ import annotations

import os

import pytest

from cli.main import main as hmr_main
from hmr.core.errors import DatasetFormatError, UnsafeArchiveError
from hmr.core.utils.archive import safe_extract
from tests.fixtures.manifests import make_tar, make_zip


def _files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


@pytest.mark.parametrize("mode, suffix", [("w:gz", "tar.gz"), ("w:bz2", "tar.bz2"),
                                          ("w:xz", "tar.xz"), ("w", "tar")])
def test_good_tar_extracts_with_links_inside(tmp_path, mode, suffix):
    arc = make_tar(tmp_path / f"ok.{suffix}", [
        ("file", "data/a.txt", b"alpha"), ("file", "data/sub/b.txt", b"beta"),
        ("symlink", "data/link_to_a", "a.txt"), ("hardlink", "data/hard_a", "data/a.txt"),
    ], mode=mode)
    dest = tmp_path / "out"
    names = safe_extract(arc, dest, progress=False)
    assert set(names) == {"data/a.txt", "data/sub/b.txt", "data/link_to_a", "data/hard_a"}
    assert (dest / "data/sub/b.txt").read_bytes() == b"beta"
    assert os.readlink(dest / "data/link_to_a") == "a.txt"
    assert (dest / "data/hard_a").read_bytes() == b"alpha"


def test_good_zip_extracts(tmp_path):
    arc = make_zip(tmp_path / "ok.zip", [("file", "ann/x.json", b"{}"), ("file", "y.bin", b"\0")])
    safe_extract(arc, tmp_path / "out", progress=False)
    assert _files_under(tmp_path / "out") == ["ann", "ann/x.json", "y.bin"]


HOSTILE_TAR = [
    ([("file", "ok.txt", b"fine"), ("file", "../evil.txt", b"x")], "../evil.txt", "'..'"),
    ([("file", "a/../../evil.txt", b"x")], "a/../../evil.txt", "'..'"),
    ([("file", "/tmp/evil_abs.txt", b"x")], "/tmp/evil_abs.txt", "absolute"),
    ([("symlink", "escape", "../../outside")], "escape", "outside"),
    ([("symlink", "abs_link", "/etc")], "abs_link", "absolute"),
    ([("symlink", "d/up", "../..")], "d/up", "outside"),
    ([("hardlink", "hard", "../outside.txt")], "hard", "outside"),
    ([("fifo", "pipe")], "pipe", "special"),
]


@pytest.mark.parametrize("members, culprit, why", HOSTILE_TAR, ids=[m[1] for m in HOSTILE_TAR])
def test_hostile_tar_member_is_refused_and_nothing_written(tmp_path, members, culprit, why):
    arc = make_tar(tmp_path / "bad.tar.gz", members)
    dest = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(arc, dest, progress=False)
    assert exc.value.record == culprit and why in str(exc.value) and "bad.tar.gz" in str(exc.value)
    assert _files_under(dest) == []
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_member_through_an_existing_symlink_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "images")  # a link left in the target by an earlier step
    arc = make_tar(tmp_path / "a.tar", [("file", "images/x.jpg", b"x")], mode="w")
    with pytest.raises(UnsafeArchiveError, match="existing symlink"):
        safe_extract(arc, dest, progress=False)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("members, culprit", [
    ([("file", "../zipslip.txt", b"x")], "../zipslip.txt"),
    ([("file", "/abs.txt", b"x")], "/abs.txt"),
    ([("file", "..\\..\\win.txt", b"x")], "..\\..\\win.txt"),
    ([("symlink", "lnk", "../../etc")], "lnk"),
])
def test_hostile_zip_member_is_refused(tmp_path, members, culprit):
    arc = make_zip(tmp_path / "bad.zip", members)
    with pytest.raises(UnsafeArchiveError) as exc:
        safe_extract(arc, tmp_path / "out", progress=False)
    assert exc.value.record == culprit


def test_corrupt_archive_is_a_format_error(tmp_path):
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"this is not an archive")
    with pytest.raises(DatasetFormatError, match="not a zip or tar"):
        safe_extract(bad, tmp_path / "out", progress=False)


def test_cli_extract_refuses_with_one_line(tmp_path, capsys):
    arc = make_tar(tmp_path / "bad.tar.gz", [("file", "../evil.txt", b"x")])
    assert hmr_main(["extract", str(arc), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing member '../evil.txt'" in err[0]
    ok = make_tar(tmp_path / "ok.tar.gz", [("file", "a.txt", b"a")])
    assert hmr_main(["extract", str(ok), str(tmp_path / "out2"), "--no-progress"]) == 0
    assert (tmp_path / "out2" / "a.txt").read_bytes() == b"a"
