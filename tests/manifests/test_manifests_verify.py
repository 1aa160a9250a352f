"""``verify_source`` reports each kind of damage precisely, and only that damage."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib

import pytest

from cli.main import main as hmr_main
from hmr.core.errors import ChecksumMismatch
from manifests import load_manifest, lock_manifest, verify_source
from tests.fixtures.manifests import (ANNOTATION, flip_one_byte, isolated_user_dir,  # noqa: F401
                                      make_source_tree, truncate)

pytestmark = pytest.mark.usefixtures("isolated_user_dir")


@pytest.fixture
def tree(tmp_path):
    return make_source_tree(tmp_path)


def failures(report):
    return sorted((c.status, c.label) for c in report.failures())


def test_clean_tree_passes(tree):
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert report.ok, report.format_table()
    assert {(c.label, c.status) for c in report.checks} == {
        (tree.annotation, "ok"), (tree.binary, "ok"), ("images [*.jpg]", "ok"),
        (tree.archive, "absent_optional")}
    assert report.bytes_hashed == sum(p.stat().st_size for p in tree.root.rglob("*") if p.is_file())


def test_missing_file_is_reported_alone(tree):
    (tree.root / tree.annotation).unlink()
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert failures(report) == [("missing", tree.annotation)]


def test_truncated_file_reports_both_sizes(tree):
    truncate(tree.root / tree.binary, keep=1000)
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert failures(report) == [("wrong_size", tree.binary)]
    check = report.failures()[0]
    assert (check.expected_size, check.actual_size) == (64 * 1024, 1000)
    assert "expected 65,536 bytes, found 1,000" in report.format_table()


def test_one_flipped_byte_is_a_checksum_error(tree):
    flip_one_byte(tree.root / tree.binary)
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert failures(report) == [("wrong_checksum", tree.binary)]
    check = report.failures()[0]
    assert check.actual_size == check.expected_size
    assert check.actual["sha256"] != check.expected["sha256"]


def test_md5_is_checked_too(tree):
    flip_one_byte(tree.root / tree.annotation, offset=3)
    report = verify_source(tree.manifest, tree.root, progress=False)
    check = report.failures()[0]
    assert check.status == "wrong_checksum" and set(check.expected) == {"sha256", "md5"}
    assert check.actual["md5"] != hashlib.md5(ANNOTATION).hexdigest()


def test_flipped_byte_in_an_image_fails_the_folder(tree):
    flip_one_byte(tree.root / "images" / "000003.jpg")
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert failures(report) == [("wrong_checksum", "images [*.jpg]")]


def test_extra_file_is_named_and_can_be_allowed(tree):
    (tree.root / "annotations" / "train.json.part").write_bytes(b"half a download")
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert failures(report) == [("extra", "annotations/train.json.part")]
    assert verify_source(tree.manifest, tree.root, extra_ok=True, progress=False).ok


def test_renamed_image_is_a_count_and_an_extra(tree):
    os.rename(tree.root / "images" / "000002.jpg", tree.root / "images" / "000002.jpeg")
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert failures(report) == [("extra", "images/000002.jpeg"), ("wrong_count", "images [*.jpg]")]


def test_quick_mode_checks_sizes_but_not_bytes(tree):
    flip_one_byte(tree.root / tree.binary)
    report = verify_source(tree.manifest, tree.root, quick=True, progress=False)
    assert report.ok and report.bytes_hashed == 0
    assert {c.status for c in report.checks} == {"size_ok", "absent_optional"}
    truncate(tree.root / tree.binary, keep=10)
    assert failures(verify_source(tree.manifest, tree.root, quick=True, progress=False)) == [
        ("wrong_size", tree.binary)]


def test_parallel_and_serial_hashing_agree(tree):
    flip_one_byte(tree.root / tree.binary)
    a = verify_source(tree.manifest, tree.root, workers=1, progress=False)
    b = verify_source(tree.manifest, tree.root, workers=4, progress=False)
    assert [(c.label, c.status, c.actual) for c in a.checks] == \
        [(c.label, c.status, c.actual) for c in b.checks]


def test_unreadable_file_is_reported(tree):
    if os.geteuid() == 0:
        # root reads anything; use a dangling symlink instead
        (tree.root / tree.binary).unlink()
        os.symlink(tree.root / "nowhere", tree.root / tree.binary)
    else:
        os.chmod(tree.root / tree.binary, 0)
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert [c.label for c in report.failures()] == [tree.binary]
    assert report.failures()[0].status in ("unreadable", "missing")


def test_symlink_loop_does_not_hang(tree):
    os.symlink("..", tree.root / "data" / "loop")
    report = verify_source(tree.manifest, tree.root, progress=False)  # returns at all
    assert report.ok, "the loop leads back to the root, already walked: nothing new"


def test_cli_exit_codes_and_json(tree, capsys):
    assert hmr_main(["verify", str(tree.manifest), "--root", str(tree.root)]) == 0
    assert "result: OK" in capsys.readouterr().out
    truncate(tree.root / tree.binary, keep=5)
    assert hmr_main(["verify", str(tree.manifest), "--root", str(tree.root), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["summary"]["wrong_size"] == 1
    bad = [c for c in doc["checks"] if c["status"] not in ("ok", "absent_optional")]
    assert bad == [dict(bad[0], path=tree.binary, expected_size=65536, actual_size=5)]


def test_cli_missing_root_is_one_line_error(tree, capsys):
    assert hmr_main(["verify", str(tree.manifest), "--root", str(tree.root / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def _strip_checksums(manifest_path):
    text = manifest_path.read_text()
    doc = tomllib.loads(text)
    for f in doc["files"]:
        if f["kind"] == "dir":
            f.update(size="unknown", count="unknown", tree_sha256="unknown")
        elif f["path"] == "data/params.bin":
            f.update(size="unknown", sha256="unknown")
    import tomli_w

    manifest_path.write_text(tomli_w.dumps(doc))


def test_unknown_checksums_are_unverified_and_fail_only_in_strict_mode(tree):
    _strip_checksums(tree.manifest)
    report = verify_source(tree.manifest, tree.root, progress=False)
    assert report.ok
    assert sorted(c.label for c in report.by_status("unverified")) == ["data/params.bin",
                                                                      "images [*.jpg]"]
    assert not verify_source(tree.manifest, tree.root, strict=True, progress=False).ok


def test_lock_fills_unknowns_and_then_catches_damage(tree, isolated_user_dir):
    _strip_checksums(tree.manifest)
    out = lock_manifest(tree.manifest, tree.root, progress=False)
    assert out == isolated_user_dir / "toyset.toml"
    locked = load_manifest("toyset")  # found in the user folder
    params = locked.entry("data/params.bin")
    assert params.size == 64 * 1024 and params.sha256 == hashlib.sha256(
        (tree.root / tree.binary).read_bytes()).hexdigest()
    assert locked.entry("images [*.jpg]").count == 5 and locked.locked["root"]
    assert verify_source("toyset", tree.root, progress=False).ok
    flip_one_byte(tree.root / "images" / "000001.jpg")
    assert failures(verify_source("toyset", tree.root, progress=False)) == [
        ("wrong_checksum", "images [*.jpg]")]


def test_locked_folder_failures_name_the_files(tree, isolated_user_dir):
    from manifests.file_index import index_path

    _strip_checksums(tree.manifest)
    out = lock_manifest(tree.manifest, tree.root, progress=False)
    assert index_path(out).is_file() and index_path(out).name == "toyset.files.json.gz"
    flip_one_byte(tree.root / "images" / "000001.jpg")
    check = verify_source("toyset", tree.root, progress=False).failures()[0]
    assert check.status == "wrong_checksum"
    assert check.detail == "1 file(s) differ from the locked copy: 000001.jpg (changed)"
    # a rename keeps the count: the digest fails, the listing names both sides
    os.replace(tree.root / "images" / "000002.jpg", tree.root / "images" / "000009.jpg")
    check = verify_source("toyset", tree.root, progress=False).failures()[0]
    assert check.detail == ("3 file(s) differ from the locked copy: 000001.jpg (changed), "
                            "000009.jpg (not in the locked copy), 000002.jpg (missing)")
    # the listing only explains: a damaged or stale one is ignored, the verdict stands
    index_path(out).write_bytes(b"not gzip")
    report = verify_source("toyset", tree.root, progress=False)
    assert not report.ok and "re-lock or re-download" in report.failures()[0].detail
    index_path(out).unlink()
    assert "re-lock or re-download" in verify_source("toyset", tree.root, progress=False).failures()[0].detail


def test_listing_that_does_not_match_the_locked_digest_names_nothing(tree, isolated_user_dir):
    from manifests.file_index import explain_folder, index_path, read_index, write_index

    _strip_checksums(tree.manifest)
    out = lock_manifest(tree.manifest, tree.root, progress=False)
    listing = read_index(out)["images [*.jpg]"]
    rows = [(rel, size, sha) for rel, (size, sha) in listing.items()]
    forged = [(rel, size, "0" * 64 if rel == "000003.jpg" else sha) for rel, size, sha in rows]
    write_index(out, {"images [*.jpg]": forged})  # would blame 000003.jpg, which is intact
    flip_one_byte(tree.root / "images" / "000001.jpg")
    check = verify_source("toyset", tree.root, progress=False).failures()[0]
    assert check.status == "wrong_checksum" and "000003" not in check.detail
    assert explain_folder(rows, listing, "f" * 64) is None
    assert index_path(out).exists()


def test_lock_refuses_a_copy_that_contradicts_the_publisher(tree):
    flip_one_byte(tree.root / tree.annotation)
    with pytest.raises(ChecksumMismatch, match="refusing to lock"):
        lock_manifest(tree.manifest, tree.root, progress=False)


def test_verify_extract_unpacks_an_intact_archive(tmp_path):
    t = make_source_tree(tmp_path, with_archive=True, extracted=False)
    assert failures(verify_source(t.manifest, t.root, progress=False)) == [
        ("missing", "images [*.jpg]")]
    report = verify_source(t.manifest, t.root, extract=True, progress=False)
    assert report.ok, report.format_table()
    assert any("extracted 5 member(s) of images.tar.gz" in n for n in report.notes)


def test_verify_extract_refuses_a_truncated_archive(tmp_path):
    t = make_source_tree(tmp_path, with_archive=True, extracted=False)
    truncate(t.root / t.archive, keep=100)
    with pytest.raises(ChecksumMismatch, match="incomplete download"):
        verify_source(t.manifest, t.root, extract=True, progress=False)
    assert not (t.root / "images").exists()


def test_optional_catch_all_folder_never_fails_strict(tree):
    text = tree.manifest.read_text() + '''
[[files]]
path = "data"
kind = "dir"
glob = "**/*"
size = "unknown"
count = "unknown"
tree_sha256 = "unknown"
required = false
'''
    tree.manifest.write_text(text)
    (tree.root / "data" / "README.txt").write_text("release notes")
    report = verify_source(tree.manifest, tree.root, strict=True, progress=False)
    assert report.ok and [c.label for c in report.by_status("unverified")] == ["data [**/*]"]
    assert "data [**/*]" not in report.format_table()


def test_packaged_manifest_on_a_matching_tree(tmp_path):
    """A real manifest (EFT-MPII: one JSON, nothing published about it) on its layout."""
    (tmp_path / "MPII_fit").mkdir()
    (tmp_path / "MPII_fit" / "MPII_ver01.json").write_text('{"ver": 0.1, "data": []}')
    report = verify_source("eft_mpii", tmp_path, progress=False)
    assert report.ok and [c.status for c in report.checks] == ["unverified"]
    assert not verify_source("eft_mpii", tmp_path, strict=True, progress=False).ok
    (tmp_path / "MPII_fit" / "MPII_ver01.json").unlink()
    assert failures(verify_source("eft_mpii", tmp_path, progress=False)) == [
        ("missing", "MPII_fit/MPII_ver01.json")]
