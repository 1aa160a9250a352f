"""A store replaced with --overwrite, or converted, and killed at the worst moment: the name
holds the old store whole, the new store whole, or nothing, and a rerun of the same command
finishes the job (docs/reliability.md). Kills are real SIGKILLs of a child process, fired by
a wrapped function at the chosen call, not by timing."""

from __future__ import annotations

import numpy as np
import pytest

from cli.main import main
from hmr.core.errors import SchemaError
from hmr.core.schema import open_store
from hmr.core.utils.atomic import remove_stale_partials
from tests.reliability.helpers import coco_raw, convert_args, run_child

pytestmark = pytest.mark.slow

STORE = "coco2017_val.zarr"


def _keypoints(path):
    return open_store(path).read("keypoints2d")


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name
                  or p.name.startswith(".hmr-"))


@pytest.fixture()
def raw(tmp_path):
    return coco_raw(tmp_path / "coco")


def _reference(raw, tmp_path, name, *extra):
    """The store a clean conversion writes (what a killed run must end up as, or not touch)."""
    assert main(convert_args(raw, tmp_path / name, *extra)) == 0
    return _keypoints(tmp_path / name / STORE)


def test_kill_while_the_old_store_is_deleted_never_leaves_a_store_with_missing_chunks(raw, tmp_path):
    old = _reference(raw, tmp_path, "ref-old", "-o", "min_keypoints=7")
    new = _reference(raw, tmp_path, "ref-new")
    assert len(old) != len(new)
    out = tmp_path / "out"
    assert main(convert_args(raw, out, "-o", "min_keypoints=7")) == 0
    # --overwrite; the process dies while deleting a store folder, after one chunk file went
    child = run_child(f"""
        import shutil
        def half_delete(path, *a, **k):
            (Path(path) / "keypoints2d" / "0.0.0").unlink()
        kill_when(shutil, "rmtree", lambda path, *a, **k: Path(path).name.startswith("{STORE}")
                  and ".partial-" not in Path(path).name, before=half_delete)
        from cli.main import main
        sys.exit(main({convert_args(raw, out, "--overwrite")!r}))
    """)
    assert child.returncode == -9, child.stderr
    store = out / STORE
    try:
        got = _keypoints(store)
    except (SchemaError, FileNotFoundError):
        got = None  # refused whole: acceptable, never silently wrong
    assert got is not None, "the new store was already complete: it must be in place"
    assert any(len(got) == len(ref) and np.array_equal(got, ref) for ref in (old, new)), \
        "the store under the final name must be one of the two stores, whole"
    # the rerun of the same command (even without --overwrite) finishes the job
    assert main(convert_args(raw, out)) == 0
    np.testing.assert_array_equal(_keypoints(store), new)
    assert _leftovers(out) == []
    assert main(["verify", str(store)]) == 0


def test_kill_between_store_rename_and_manifest_write_is_redone_by_a_rerun(raw, tmp_path, capsys):
    out = tmp_path / "out"
    child = run_child(f"""
        import manifests
        kill_when(manifests, "write_output_manifest")
        from cli.main import main
        sys.exit(main({convert_args(raw, out)!r}))
    """)
    assert child.returncode == -9, child.stderr
    assert (out / STORE).exists() and not (out / f"{STORE}.manifest.json").exists()
    assert main(["verify", str(out / STORE)]) != 0
    assert "interrupted" in capsys.readouterr().err
    assert main(convert_args(raw, out)) == 0, "a rerun without --overwrite redoes the store"
    assert main(["verify", str(out / STORE)]) == 0
    assert _leftovers(out) == []


def test_kill_after_the_old_store_moved_aside_restores_it(raw, tmp_path):
    old = _reference(raw, tmp_path, "ref-old", "-o", "min_keypoints=7")
    out = tmp_path / "out"
    assert main(convert_args(raw, out, "-o", "min_keypoints=7")) == 0
    final = out / STORE
    # killed after the old folder left the name and before the new one arrived
    child = run_child(f"""
        kill_when(os, "replace", lambda src, dst, *a, **k: str(dst) == {str(final)!r}
                  and ".partial-" in str(src))
        from cli.main import main
        sys.exit(main({convert_args(raw, out, "--overwrite")!r}))
    """)
    assert child.returncode == -9, child.stderr
    assert not final.exists()
    asides = [p for p in out.iterdir() if ".old-" in p.name]
    assert len(asides) == 1, "the old store waits aside, whole"
    remove_stale_partials(final)  # what the next writer of that name does first
    np.testing.assert_array_equal(_keypoints(final), old)
    assert _leftovers(out) == []
