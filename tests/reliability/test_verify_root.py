"""``hmr verify NAME --root DIR`` stays inside DIR: a link leading out (to ``/`` it would walk
the whole machine) is reported, not followed; a FIFO is reported, never opened."""

from __future__ import annotations

import os

import pytest

from manifests import verify_source
from tests.fixtures.manifests import isolated_user_dir, make_source_tree  # noqa: F401
from tests.reliability.helpers import run_child

pytestmark = pytest.mark.usefixtures("isolated_user_dir")


@pytest.fixture
def tree(tmp_path):
    return make_source_tree(tmp_path)


def test_link_leaving_the_root_is_reported_not_walked(tree, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret.txt").write_text("not the dataset's")
    os.symlink(outside, tree.root / "escape")
    os.symlink(outside / "deep" / "secret.txt", tree.root / "secret_link.txt")
    os.symlink("/", tree.root / "slash")
    report = verify_source(tree.manifest, tree.root, progress=False)
    labels = {c.label: c for c in report.checks}
    assert not any(label.startswith(("escape/", "slash/")) for label in labels), "walked outside the root"
    for name in ("escape", "slash", "secret_link.txt"):
        assert labels[name].status == "outside_root" and "outside the root" in labels[name].detail
    assert not report.ok


def test_link_inside_the_root_is_still_followed(tree):
    os.symlink(tree.root / "images", tree.root / "images_again")
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert all(c.status != "outside_root" for c in report.checks)


def test_fifo_is_reported_and_never_opened(tree):
    os.mkfifo(tree.root / "images" / "pipe.jpg")  # matches the folder's *.jpg glob
    # in a child with a deadline: opening a FIFO to hash it would block forever
    child = run_child(f"""
        from cli.main import main
        sys.exit(main(["verify", {str(tree.manifest)!r}, "--root", {str(tree.root)!r}]))
    """, timeout=60)
    assert child.returncode == 1, child.stderr
    assert "outside_root" in child.stdout and "images/pipe.jpg" in child.stdout
