import subprocess
import sys

import pytest

from hmr.core.utils.atomic import atomic_path, atomic_write_text, remove_partials_in


def test_success_renames_and_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "one")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("two")
            raise RuntimeError("crash")
    assert target.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_no_overwrite_refuses_before_writing_anything(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("keep")
    with pytest.raises(FileExistsError):
        with atomic_path(target, overwrite=False) as tmp:
            tmp.write_text("new")
    assert target.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_directory_output_replaces_old_folder_whole(tmp_path):
    target = tmp_path / "store.zarr"
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "a").write_text("1")
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def dead_pid() -> int:
    """The PID of a process that has exited (stale partials carry such PIDs)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_many_files_mode_leaves_the_folder_search_to_one_sweep(tmp_path):
    pid = dead_pid()
    (tmp_path / f"a.jpg.partial-{pid}").write_text("stale")
    (tmp_path / f"b.jpg.partial-{pid}").mkdir()
    with atomic_path(tmp_path / "c.jpg", many=True) as tmp:
        tmp.write_text("new")
    assert (tmp_path / "c.jpg").read_text() == "new"
    assert (tmp_path / f"a.jpg.partial-{pid}").exists()  # not searched per file
    assert remove_partials_in(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jpg"]
    with pytest.raises(RuntimeError):  # a failed write still leaves nothing behind
        with atomic_path(tmp_path / "d.jpg", many=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jpg"]
